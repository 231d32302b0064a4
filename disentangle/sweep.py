"""Sweeps and comparisons: run a recipe over seeds and a grid of overrides, and tabulate metrics.

``disentangle sweep RECIPE --seeds 0,1,2 --grid train.lr=1e-3,2e-3`` trains every combination in
``OUT/<name>/`` (resumable: a finished run, marked by ``sweep-done.json``, is skipped; one with a
checkpoint but no mark continues from it), then writes ``OUT/sweep.csv`` and ``OUT/sweep.md``: one
column per configuration, one row per metric, mean ± std over the seeds. ``disentangle compare
RUN...`` builds the same table from existing run directories, grouping runs whose resolved recipes
differ only in ``train.seed``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs
import numpy as np

from disentangle.errors import DisentangleError
from disentangle.io import atomic_write_text
from disentangle.recipe import read_toml

DONE = "sweep-done.json"


@attrs.frozen
class SweepRun:
    """One training run of a sweep."""

    group: str
    """The configuration without the seed (``base`` or the grid overrides, e.g. ``train.lr=0.001``)."""
    seed: int
    overrides: tuple[str, ...]
    """Every ``--set`` passed to the recipe (user ones, the grid's, then ``train.seed``)."""
    run_dir: Path


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise DisentangleError(f"--seeds {text!r}: expected integers separated by commas, e.g. 0,1,2") from None
    if not seeds:
        raise DisentangleError("--seeds is empty", hint="e.g. --seeds 0,1,2")
    return seeds


def parse_grid(items: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``["key=a,b", ...]`` -> ``[(key, [a, b]), ...]`` (values are TOML, as in ``--set``)."""
    grid = []
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise DisentangleError(f"--grid {item!r}: expected key=value1,value2", hint="e.g. --grid train.lr=1e-3,2e-3")
        grid.append((key.strip(), [v.strip() for v in _split_values(values)]))
    return grid


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets/quotes, so ``a=[1,2],[3,4]`` gives two lists."""
    out, depth, quote, cur = [], 0, "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        cur += ch
    return [*out, cur]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("_")[:80] or "base"


def plan(recipe: Path, seeds: Sequence[int], sets: Sequence[str], grid: Sequence[tuple[str, list[str]]],
         out_dir: Path) -> list[SweepRun]:
    """Every (grid combination, seed) pair as a :class:`SweepRun` under ``out_dir``."""
    runs = []
    keys = [k for k, _ in grid]
    for combo in itertools.product(*[vals for _, vals in grid]):
        grid_sets = tuple(f"{k}={v}" for k, v in zip(keys, combo))
        group = ",".join(grid_sets) or "base"
        for seed in seeds:
            name = f"{recipe.stem}-{_slug('-'.join(grid_sets)) if grid_sets else 'base'}-seed{seed}"
            runs.append(SweepRun(group, seed, (*sets, *grid_sets, f"train.seed={seed}"), out_dir / name))
    return runs


def run_sweep(recipe: Path, runs: Sequence[SweepRun], device: str | None = None,
              log: Callable[[str], None] = print, console: Any = None) -> None:
    """Train every run that is not finished (continuing killed ones) and mark it finished."""
    from disentangle.recipe import load_recipe
    from disentangle.training import read_run_recipe, train
    from disentangle.training.state import CHECKPOINT

    def where(i: int, run: SweepRun) -> str:
        return f"[{i}/{len(runs)}] {run.group} seed {run.seed}"

    specs = {}
    for i, run in enumerate(runs, 1):  # every new run's recipe is checked before any run trains
        if not (run.run_dir / DONE).is_file() and not (run.run_dir / CHECKPOINT).is_file():
            try:
                specs[run.run_dir] = load_recipe(recipe, run.overrides)
            except DisentangleError:
                log(f"{where(i, run)}: its recipe is not valid, so the sweep trains nothing")
                raise
    for i, run in enumerate(runs, 1):
        if (run.run_dir / DONE).is_file():
            log(f"{where(i, run)}: finished, skipped ({run.run_dir})")
            continue
        resume = run.run_dir not in specs
        log(f"{where(i, run)}: {'resuming' if resume else 'training'} in {run.run_dir}")
        spec = read_run_recipe(run.run_dir) if resume else specs[run.run_dir]
        result = train(spec, run.run_dir, resume=resume, device=device, console=console)
        atomic_write_text(json.dumps({"group": run.group, "seed": run.seed, "overrides": list(run.overrides),
                                      "step": result.step}, indent=2, default=str),
                          run.run_dir / DONE)


def run_metrics(run_dir: Path) -> dict[str, float]:
    """A run's eval.json flattened to ``{metric/key: value}``; per-run ``…/std`` entries (spread
    over sampling rounds) are left out, since the table reports the spread over seeds."""
    path = Path(run_dir) / "eval.json"
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise DisentangleError(f"{run_dir} has no eval.json", hint=f"evaluate it: disentangle evaluate {run_dir}") from None
    except json.JSONDecodeError as exc:
        raise DisentangleError(f"{path}: not JSON ({exc})", hint=f"recompute it: disentangle evaluate {run_dir}") from None
    flat = {}
    for metric, values in results.items():
        for key, value in values.items():
            if not key.endswith("/std") and isinstance(value, (int, float)):
                flat[f"{metric}/{key[:-5] if key.endswith('/mean') else key}"] = float(value)
    return flat


@attrs.frozen
class Table:
    """Metric rows by configuration columns: ``cells[(metric, group)] = (mean, std, n)``."""

    groups: list[str]
    metrics: list[str]
    cells: dict[tuple[str, str], tuple[float, float, int]]

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["group", "metric", "mean", "std", "n"])
        for g in self.groups:
            for m in self.metrics:
                if (m, g) in self.cells:
                    mean, std, n = self.cells[(m, g)]
                    w.writerow([g, m, f"{mean:.6g}", f"{std:.6g}", n])
        return buf.getvalue()

    def cell(self, metric: str, group: str) -> str:
        if (metric, group) not in self.cells:
            return "–"
        mean, std, n = self.cells[(metric, group)]
        return f"{mean:.4g} ± {std:.2g}" if n > 1 else f"{mean:.4g}"

    def markdown(self) -> str:
        def esc(text: str) -> str:  # a "|" inside a cell (as in H(y|x)) would end the cell
            return text.replace("|", "\\|")

        lines = ["| metric | " + " | ".join(map(esc, self.groups)) + " |", "|---|" + "---|" * len(self.groups)]
        lines += ["| " + esc(m) + " | " + " | ".join(self.cell(m, g) for g in self.groups) + " |" for m in self.metrics]
        return "\n".join(lines) + "\n"


def tabulate(grouped: dict[str, list[Path]]) -> Table:
    """Mean ± std (population std over seeds) of every metric of each group of run directories."""
    cells: dict[tuple[str, str], tuple[float, float, int]] = {}
    metrics: list[str] = []
    for group, dirs in grouped.items():
        values: dict[str, list[float]] = {}
        for d in dirs:
            for k, v in run_metrics(d).items():
                values.setdefault(k, []).append(v)
        for k, vs in values.items():
            if k not in metrics:
                metrics.append(k)
            cells[(k, group)] = (float(np.mean(vs)), float(np.std(vs)), len(vs))
    return Table(list(grouped), metrics, cells)


def group_runs(run_dirs: Sequence[Path]) -> dict[str, list[Path]]:
    """Group run directories whose resolved recipes differ only in ``train.seed``; each group is
    named after its first run (without a ``-seedN`` suffix), prefixed with that run's parent folder
    when another group would get the same name (sweeps of different presets name their runs alike)."""
    members: dict[str, list[Path]] = {}
    for d in run_dirs:
        d = Path(d)
        if not (d / "recipe.toml").is_file():
            raise DisentangleError(f"{d} is not a run directory (no recipe.toml)", hint="pass run directories of `disentangle run`")
        raw = read_toml(d / "recipe.toml")
        raw.get("train", {}).pop("seed", None)
        members.setdefault(json.dumps(raw, sort_keys=True, default=str), []).append(d)
    short = {key: re.sub(r"-seed\d+$", "", dirs[0].name) for key, dirs in members.items()}
    taken = Counter(short.values())
    groups: dict[str, list[Path]] = {}
    for key, dirs in members.items():
        name = short[key] if taken[short[key]] == 1 else f"{dirs[0].parent.name}/{short[key]}"
        while name in groups:  # same folder and name, different recipes
            name += "'"
        groups[name] = dirs
    return groups


def write_tables(table: Table, out_dir: Path, stem: str = "sweep") -> tuple[Path, Path]:
    csv_path, md_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    atomic_write_text(table.csv(), csv_path)
    atomic_write_text(table.markdown(), md_path)
    return csv_path, md_path
