"""The ``disentangle`` command line (typer + rich)."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from disentangle.errors import DisentangleError


def _hide_flag_types(params: list, ctx: typer.Context) -> list:
    """typer labels every flag ``<bool>`` (``--help <bool>``); a flag takes no value, so show none."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class _Group(TyperGroup):
    """The ``disentangle`` group: flags (also of plug-in commands) are shown without a type."""

    def get_params(self, ctx):  # type: ignore[override]
        return _hide_flag_types(super().get_params(ctx), ctx)

    def get_command(self, ctx, cmd_name):  # type: ignore[override]
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _hide_flag_types(command.get_params(ctx), ctx)
        return command


_APP_SETTINGS = dict(
    name="disentangle",
    help="Self-supervised sequential VAEs (S3VAE): learn a static code z_f and a dynamic code z_1:T.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Group,
)
#: The core's commands (plug-in commands are added by :func:`build_app`).
app = typer.Typer(**_APP_SETTINGS)
err = Console(stderr=True)
out = Console()

SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Override a recipe key, e.g. --set train.lr=3e-4 (repeatable)."),
]


#: Longer runs of text without spaces (e.g. a 100 kB --set value) are shown cut, with their length.
ECHO_LIMIT = 300  # longer than any sane path


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` with every run longer than ``limit`` characters (no spaces) cut to its start."""
    return re.sub(rf"[^\s]{{{limit + 1},}}",
                  lambda m: f"{m.group()[:limit]}… ({len(m.group())} characters)", text)


def print_error(exc: DisentangleError | OSError | EOFError) -> int:
    """Print an error (and its hint) on stderr, never a traceback; return the exit code it deserves
    (2 for a recipe error, 1 otherwise)."""
    from disentangle.recipe import RecipeError

    if isinstance(exc, EOFError):  # numpy on a cut-short file; click would print a bare "Aborted."
        exc = DisentangleError(f"a file ended early while reading it: {exc}",
                               hint="a cache may be damaged: `disentangle cache verify` names it")
    if isinstance(exc, OSError):  # a file that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        exc = DisentangleError(f"{where}{exc.strerror or exc}", hint="check the path and its permissions")
    err.print(f"[bold red]error:[/] {escape(shorten(exc.message))}", highlight=False, markup=True, soft_wrap=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {escape(shorten(exc.hint))}", highlight=False, soft_wrap=True)
    return 2 if isinstance(exc, RecipeError) else 1


def _fail(exc: DisentangleError | OSError | EOFError) -> None:
    raise typer.Exit(print_error(exc))


@app.command()
def run(
    recipe: Annotated[Optional[Path], typer.Argument(help="Recipe TOML file (not needed with --resume).")] = None,
    set_: SetOption = None,
    run_dir: Annotated[Optional[str], typer.Option(metavar="PATH", help="Where the run is written (default runs/<recipe>-<time>).")] = None,
    resume: Annotated[Optional[str], typer.Option(metavar="PATH", help="Continue the run in this directory from its last checkpoint.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, mps or auto (default: the recipe's train.device).")] = None,
) -> None:
    """Validate a recipe, then train it, evaluate it and write pictures into a run directory."""
    from disentangle.recipe import load_recipe
    from disentangle.training import read_run_recipe, train
    from disentangle.training.stop import Stopped

    target = None
    try:
        for flag, value in (("--run-dir", run_dir), ("--resume", resume)):
            if value is not None and not value.strip():
                raise DisentangleError(f"{flag} is empty", hint=f"pass a folder, e.g. {flag} runs/my-run")
        run_dir = Path(run_dir) if run_dir is not None else None
        resume = Path(resume) if resume is not None else None
        if device not in (None, "auto", "cpu", "cuda", "mps"):
            raise DisentangleError(f"--device {device!r}: expected cpu, cuda, mps or auto")
        if resume is not None:
            spec = read_run_recipe(resume, set_ or [])
            if recipe is not None:
                err.print(f"note: resuming uses {resume / 'recipe.toml'}; the recipe argument {recipe} is not read")
            target, is_resume = resume, True
        else:
            if recipe is None:
                raise DisentangleError("no recipe given", hint="disentangle run recipes/quickstart.toml")
            spec = load_recipe(recipe, set_ or [])
            target = run_dir or Path("runs") / f"{recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            is_resume = False
        worker = os.environ.get("RANK", "0") != "0"  # under torchrun only rank 0 talks
        result = train(spec, target, resume=is_resume, device=device,
                       console=Console(stderr=True, quiet=True) if worker else err)
    except Stopped as exc:  # SIGINT/SIGTERM during training: a checkpoint was written
        print_error(exc)
        raise typer.Exit(128 + exc.signum)
    except (DisentangleError, OSError, EOFError) as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:  # a signal outside the training loop, or a second one
        _interrupted(target, recipe, str(exc) or "SIGINT")
    if not worker:
        out.print(f"run directory: {result.run_dir}")


def _interrupted(target: Path | None, recipe: Path | None, signame: str) -> None:
    from disentangle.training import CHECKPOINT

    code = 143 if signame == "SIGTERM" else 130
    if target is not None and (target / CHECKPOINT).is_file():
        err.print(f"[yellow]interrupted[/] ({signame}): the last checkpoint is kept; continue with "
                  f"`disentangle run --resume {target}`", soft_wrap=True)
    elif target is not None and recipe is not None:
        err.print(f"[yellow]interrupted[/] ({signame}) before the first checkpoint, so there is nothing to "
                  f"resume; start again with `disentangle run {recipe} --run-dir {target}`", soft_wrap=True)
    else:
        err.print(f"[yellow]interrupted[/] ({signame})", soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def validate(
    recipes: Annotated[list[Path], typer.Argument(help="Recipe TOML files.")],
    set_: SetOption = None,
) -> None:
    """Check recipes against the installed plug-ins; print every error of each file at once."""
    from disentangle.recipe import load_recipe

    failed = False
    for path in recipes:
        try:
            load_recipe(path, set_ or [])
            out.print(f"[green]ok[/] {path}")
        except DisentangleError as exc:
            failed = True
            print_error(exc)
    if failed:
        raise typer.Exit(2)


@app.command("list-plugins")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit with status 1 if any plug-in failed to load or "
                                                        "has a name conflict (for CI of plug-in packages).")] = False,
) -> None:
    """Show installed plug-ins, their components by kind, and any that failed to load or conflict."""
    from disentangle.registry import get_registry

    reg = get_registry()
    plugins = [p.to_dict() for p in reg.plugins]
    bad = [p["name"] for p in plugins if p["status"] in ("error", "conflict")]
    if as_json:
        print(json.dumps({"plugins": plugins, "conflicts": reg.conflicts}, indent=2))
    else:
        table = Table(title="disentangle plug-ins")
        for col in ("plug-in", "distribution", "version", "components", "status"):
            table.add_column(col)
        for p in plugins:
            comps = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(p["components"].items()))
            status = {"ok": "[green]ok[/]", "disabled": "[yellow]disabled[/]",
                      "conflict": "[red]conflict[/]: " + "; ".join(p["conflicts"])}.get(
                p["status"], f"[red]error[/]: {p['error']}")
            table.add_row(p["name"], p["distribution"] or "-", p["version"] or "-", comps or "-", status)
        out.print(table)
        for conflict in reg.conflicts:
            err.print(f"[bold red]conflict:[/] {conflict}")
    if check and bad:
        err.print(f"check failed: {', '.join(bad)}")
        raise typer.Exit(1)


@app.command()
def describe(
    name: Annotated[str, typer.Argument(help="A component name, e.g. conv or flow-grid.")],
) -> None:
    """Show a component's recipe parameters (type, default, meaning), kind, plug-in and docstring."""
    from disentangle import describe as d
    from disentangle.registry import get_registry

    reg = get_registry()
    try:
        found = d.find(reg, name)
    except DisentangleError as exc:
        _fail(exc)
    for i, comp in enumerate(found):
        if i:
            out.print()
        for line in d.text(comp, reg):
            out.print(line, highlight=False, markup=False, soft_wrap=True)
        ps = d.params(comp.config)
        if not ps:
            out.print("no parameters")
            continue
        table = Table(show_edge=False)
        for col in ("parameter", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for p in ps:
            table.add_row(p.name, p.type, p.default, p.doc)
        out.print(table, markup=False)


@app.command()
def sample(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `disentangle run`.")],
    keep: Annotated[str, typer.Option(help="static: keep each test sequence's z_f, sample z_1:T from the prior; "
                                           "dynamic: keep z_1:T, sample z_f.")] = "static",
    out_file: Annotated[Path, typer.Option("--out", help="Output .npz file.")] = Path("samples.npz"),
    seed: Annotated[int, typer.Option(help="Seed for the prior samples.")] = 0,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N test sequences.")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, mps or auto.")] = "auto",
) -> None:
    """Export generated sequences with the test labels (arrays sequences, labels_<name>) as .npz."""
    import numpy as np

    from disentangle.io import atomic_path
    from disentangle.training import load_run, sample as do_sample

    try:
        if keep not in ("static", "dynamic"):
            raise DisentangleError(f"--keep {keep!r}: expected 'static' or 'dynamic'")
        pipe = load_run(run_dir, device)
        arrays = do_sample(pipe, keep, seed=seed, limit=limit)
        with atomic_path(out_file) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, keep=np.array(keep), **arrays)
    except (DisentangleError, OSError, EOFError) as exc:
        _fail(exc)
    seqs = arrays["sequences"]
    out.print(f"wrote {out_file}: sequences {seqs.dtype} {tuple(seqs.shape)}, labels "
              + ", ".join(k[len('labels_'):] for k in arrays if k.startswith("labels_")))


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `disentangle run`.")],
    set_: SetOption = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, mps or auto.")] = "auto",
) -> None:
    """Recompute a run's pictures and metrics (eval.json) from its last checkpoint."""
    from disentangle.training import evaluate as do_evaluate, load_run

    try:
        pipe = load_run(run_dir, device, overrides=tuple(set_ or ()))
        do_evaluate(pipe, run_dir, console=err)
    except (DisentangleError, OSError, EOFError) as exc:
        _fail(exc)


cache_app = typer.Typer(name="cache", help="Where caches live, their sizes and state; verify or clear them.",
                        no_args_is_help=True, cls=_Group)
app.add_typer(cache_app)
CacheDirOption = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="The cache folder (default: $DISENTANGLE_CACHE_DIR, else ~/.cache/disentangle).")]


def _cache_dir(cache_dir: Path | None) -> Path:
    from disentangle.io import default_cache_dir

    return cache_dir or default_cache_dir()


def _cache_table(found, title: str) -> None:
    table = Table(title=title)
    for col in ("entry", "kind", "size", "state"):
        table.add_column(col, overflow="fold")
    for e in found:
        table.add_row(str(e.path), e.kind, f"{e.bytes / 1e6:.1f} MB",
                      "[green]ok[/]" if e.ok else f"[red]{e.state}[/]")
    out.print(table)


@cache_app.command("list")
def cache_list(cache_dir: CacheDirOption = None) -> None:
    """List cache entries: path, size and state (a fast check: header, size, sampled bytes)."""
    from disentangle import cache

    where = _cache_dir(cache_dir)
    found = list(cache.entries(where))
    _cache_table(found, f"caches in {where}: {sum(e.bytes for e in found) / 1e6:.1f} MB")


@cache_app.command("verify")
def cache_verify(cache_dir: CacheDirOption = None) -> None:
    """Check every byte of every cache entry against its record; exit 1 if any is damaged."""
    from disentangle import cache

    where = _cache_dir(cache_dir)
    found = list(cache.entries(where, full=True))
    _cache_table(found, f"caches in {where}")
    bad = [e for e in found if not e.ok]
    if bad:
        err.print(f"{len(bad)} damaged or unrecorded entr{'y' if len(bad) == 1 else 'ies'}; remove with "
                  "`disentangle cache clear --damaged` (they are rebuilt on next use)", soft_wrap=True)
        raise typer.Exit(1)


@cache_app.command("clear")
def cache_clear(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Entries to remove (as `cache list` shows them).")] = None,
    damaged: Annotated[bool, typer.Option("--damaged", help="Remove every entry that is not ok.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """Remove cache entries (they are rebuilt when next needed)."""
    from disentangle import cache

    where = _cache_dir(cache_dir)
    if not (paths or damaged or all_):
        _fail(DisentangleError("nothing to clear", hint="name entries, or pass --damaged or --all"))
    found = list(cache.entries(where))
    chosen = [e.path for e in found if all_ or (damaged and not e.ok)]
    for p in paths or []:
        p = p.resolve() if p.exists() else p
        if not p.exists() or where.resolve() not in p.resolve().parents:
            _fail(DisentangleError(f"{p} is not an entry of the cache {where}", hint="see `disentangle cache list`"))
        chosen.append(p)
    freed = 0
    for p in dict.fromkeys(chosen):
        freed += cache.clear(p)
        out.print(f"removed {p}")
    out.print(f"freed {freed / 1e6:.1f} MB")

@app.command()
def sweep(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file.")],
    seeds: Annotated[str, typer.Option(help="Seeds (train.seed), comma-separated.")] = "0,1,2",
    set_: SetOption = None,
    grid: Annotated[Optional[list[str]], typer.Option(help="A key and its values, e.g. --grid train.lr=1e-3,2e-3 "
                                                           "(repeatable: every combination runs).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Sweep directory (default sweeps/<recipe>).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, mps or auto (default: the recipe's).")] = None,
) -> None:
    """Train a recipe over seeds and a grid (finished runs skipped, killed ones resumed); write
    sweep.csv and sweep.md with mean ± std per metric."""
    from disentangle import sweep as sw

    target = out_dir or Path("sweeps") / recipe.stem
    try:
        runs = sw.plan(recipe, sw.parse_seeds(seeds), set_ or [], sw.parse_grid(grid or []), target)
        sw.run_sweep(recipe, runs, device, log=err.print, console=err)
        grouped: dict[str, list[Path]] = {}
        for r in runs:
            grouped.setdefault(r.group, []).append(r.run_dir)
        table = sw.tabulate(grouped)
        paths = sw.write_tables(table, target)
    except (DisentangleError, OSError) as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/]: run the same command again to continue the sweep in {target}")
        raise typer.Exit(130)
    print(table.markdown())
    out.print(f"wrote {paths[0]} and {paths[1]}")


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories (runs differing only in train.seed are grouped).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Also write compare.csv and compare.md here.")] = None,
) -> None:
    """Print the metric table (mean ± std over seeds) of existing runs."""
    from disentangle import sweep as sw

    try:
        table = sw.tabulate(sw.group_runs(runs))
        if out_dir is not None:
            sw.write_tables(table, out_dir, "compare")
    except (DisentangleError, OSError) as exc:
        _fail(exc)
    print(table.markdown())


def build_app(registry=None) -> typer.Typer:
    """The CLI: the core's commands plus those each loaded plug-in adds with ``register_commands``.

    A plug-in whose hook raises, or that adds a command whose name is taken, is reported on stderr
    and its commands are left out; the rest of the CLI works."""
    if registry is None:
        from disentangle.registry import get_registry

        registry = get_registry()
    full = typer.Typer(**_APP_SETTINGS)
    full.registered_commands = list(app.registered_commands)
    full.registered_groups = list(app.registered_groups)
    for plugin, pm in registry.managers.items():
        before = len(full.registered_commands)
        taken = {_command_name(c) for c in full.registered_commands}
        try:
            pm.hook.register_commands(cli=full)
            added = full.registered_commands[before:]
            clash = [n for n in map(_command_name, added) if n in taken]
            if clash:
                raise DisentangleError(f"command name(s) {', '.join(clash)} already used")
        except Exception as exc:  # noqa: BLE001 - a broken plug-in never breaks the CLI
            del full.registered_commands[before:]
            err.print(f"[yellow]warning:[/] plug-in '{plugin}' could not add its commands: "
                      f"{type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
    return full


def _command_name(info) -> str:
    return info.name or info.callback.__name__.lower().replace("_", "-")


def main() -> None:
    if os.environ.get("DISENTANGLE_DEBUG"):
        build_app()()
        return
    try:
        build_app()()
    except (DisentangleError, OSError, EOFError) as exc:  # e.g. raised while typer parses, or by a plug-in's command
        sys.exit(print_error(exc))


if __name__ == "__main__":
    main()
