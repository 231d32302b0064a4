"""Build a recipe's components, train with checkpoints and resume, evaluate, sample."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import attrs
import numpy as np
import torch
from rich.console import Console
from torch import nn

from disentangle import distributed
from disentangle.errors import DisentangleError, TrainingError
from disentangle.interfaces import BuildContext, Metric, ModelSpec, Objective, SequenceData
from disentangle.io import atomic_torch_save, atomic_write_text, default_cache_dir, progress_bar
from disentangle.model import S3VAE
from disentangle.recipe import ComponentSpec, Recipe, apply_overrides, parse_recipe, read_toml, save_recipe
from disentangle.registry import Registry, get_registry

CHECKPOINT = Path("checkpoints") / "last.pt"
CHECKPOINT_FORMAT = 1


# ----- building -----------------------------------------------------------------------------------

@attrs.define
class Pipeline:
    """A recipe's components, built and wired together."""

    recipe: Recipe
    data: SequenceData
    model: S3VAE
    objectives: nn.ModuleDict
    weights: dict[str, float]
    metrics: dict[str, Metric]
    ctx: BuildContext
    device: torch.device


def resolve_device(name: str) -> torch.device:
    if name not in ("auto", "cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DisentangleError(f"device {name!r}: expected cpu, cuda, mps or auto")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DisentangleError("device 'cuda' was asked for but no CUDA GPU is available",
                               hint="use --device cpu (or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise DisentangleError("device 'mps' was asked for but this PyTorch has no usable MPS backend",
                               hint="use --device cpu (or auto)")
    return torch.device(name)


def _build(registry: Registry, spec: ComponentSpec, ctx: BuildContext, where: str) -> Any:
    comp = registry.get(spec.kind, spec.use)
    try:
        return comp.build(spec.config, ctx)
    except DisentangleError:
        raise
    except Exception as exc:
        if os.environ.get("DISENTANGLE_DEBUG"):
            raise
        raise DisentangleError(
            f"{where}: {spec.kind} '{spec.use}' (plug-in '{comp.plugin}') failed to build: "
            f"{type(exc).__name__}: {exc}",
            hint="check its parameters in the recipe; set DISENTANGLE_DEBUG=1 to see the traceback",
        ) from exc


def _unique_names(specs: tuple[ComponentSpec, ...]) -> list[str]:
    names, seen = [], {}
    for spec in specs:
        seen[spec.use] = seen.get(spec.use, 0) + 1
        names.append(spec.use if seen[spec.use] == 1 else f"{spec.use}-{seen[spec.use]}")
    return names


def build_pipeline(recipe: Recipe, device: torch.device | str = "cpu", registry: Registry | None = None,
                   cache_dir: Path | None = None) -> Pipeline:
    registry = registry or get_registry()
    device = torch.device(device)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    seed = recipe.train.seed
    data: SequenceData = _build(registry, recipe.data, BuildContext(cache_dir=cache_dir, seed=seed), "data")
    n_train = len(data.split("train"))
    if n_train < recipe.train.batch_size:
        raise DisentangleError(
            f"data: the training split has {n_train} sequences, fewer than train.batch_size = "
            f"{recipe.train.batch_size}", hint="lower train.batch_size or use more data")
    ctx = BuildContext(cache_dir=cache_dir, seed=seed, data=data.spec,
                       model=ModelSpec(recipe.model.z_f_dim, recipe.model.z_t_dim, recipe.model.hidden_dim),
                       dataset_size=n_train, batch_size=recipe.train.batch_size)
    encoder = _build(registry, recipe.encoder, ctx, "model.encoder")
    decoder = _build(registry, recipe.decoder, ctx, "model.decoder")
    model = S3VAE(encoder, decoder, ctx.model).to(device)
    objectives, weights = nn.ModuleDict(), {}
    names = _unique_names(recipe.objectives)
    for name, spec in zip(names, recipe.objectives):
        section = "tasks" if spec.kind == "task" else "regularizers"
        objectives[name] = _build(registry, spec, ctx, section)
        weights[name] = spec.weight
    objectives.to(device)
    metrics = {name: _build(registry, spec, ctx, "eval.metrics")
               for name, spec in zip(_unique_names(recipe.metrics), recipe.metrics)}
    return Pipeline(recipe, data, model, objectives, weights, metrics, ctx, device)


def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run plug-in code; an unexpected exception becomes a message naming the component."""
    try:
        return fn(*args)
    except (DisentangleError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("DISENTANGLE_DEBUG"):
            raise
        raise DisentangleError(f"{what} failed: {type(exc).__name__}: {exc}",
                               hint="set DISENTANGLE_DEBUG=1 to see the traceback") from exc


def _load_state(module: nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise DisentangleError(f"{path}: the checkpoint's {what} does not fit the recipe: {str(exc).splitlines()[0]}",
                               hint="model sizes, components and their parameters must match the run's "
                                    "recipe.toml; start a new run to change them") from None


# ----- data order ---------------------------------------------------------------------------------

class _Indexed(torch.utils.data.Dataset):
    def __init__(self, split: Any):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.split[i]
        return {"x": item["x"], "labels": dict(item.get("labels", {})), "index": i}


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """The batches of one epoch ``(steps, batch_size)``: a permutation seeded by (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    steps = n // batch_size
    return torch.randperm(n, generator=g)[: steps * batch_size].view(steps, batch_size)


def make_loader(split: Any, batches: list[list[int]], num_workers: int = 0, seed: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    # A private generator: the loader's worker seeds must not draw from the global RNG, or a resumed
    # run would see a different random stream than an uninterrupted one.
    return torch.utils.data.DataLoader(_Indexed(split), batch_sampler=batches, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(seed), pin_memory=pin_memory)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else
                to_device(v, device) if isinstance(v, dict) else v) for k, v in batch.items()}


# ----- RNG + checkpoints --------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    # RNG states are CPU byte tensors, whatever map_location the checkpoint was loaded with
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise DisentangleError(f"no checkpoint at {path}", hint="is this a run directory written by "
                               "`disentangle run`? Runs write checkpoints/last.pt every train.checkpoint_every steps")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise DisentangleError(f"cannot read checkpoint {path}: {exc}",
                               hint="the file is damaged; restore it or start a new run") from None
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DisentangleError(f"{path}: unknown checkpoint format {ckpt.get('format')!r}")
    return ckpt


# ----- training -----------------------------------------------------------------------------------

@attrs.define
class TrainResult:
    run_dir: Path
    step: int
    total_steps: int
    seconds: float
    last_losses: dict[str, float]
    eval: dict[str, Any]


def _environment(pipe: Pipeline, registry: Registry) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    env = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": {p: ver(p) for p in ("disentangle", "torch", "torchvision", "torchaudio", "numpy",
                                         "pluggy", "attrs", "cattrs", "opencv-python-headless")},
        "plugins": [p.to_dict() for p in registry.plugins],
        "seed": pipe.recipe.train.seed, "device": str(pipe.device), "torch_threads": torch.get_num_threads(),
        "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if pipe.device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(pipe.device)
    return env


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop logged steps after ``step`` (a run resumed from an older checkpoint redoes them)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short when the run was killed
    atomic_write_text("".join(line + "\n" for line in keep), path)


def train(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
          registry: Registry | None = None, cache_dir: Path | None = None,
          console: Console | None = None, on_step: Callable[[int, dict[str, float]], None] | None = None
          ) -> TrainResult:
    """Train ``recipe`` in ``run_dir`` (continuing from its last checkpoint when ``resume``).

    Under ``torchrun`` every process calls this; see :mod:`disentangle.distributed`."""
    world, dev = distributed.init_world(resolve_device(device or recipe.train.device))
    try:
        return _train(recipe, Path(run_dir), resume, dev, world, registry or get_registry(), cache_dir,
                      console or Console(stderr=True, quiet=not world.is_main), on_step)
    finally:
        distributed.shutdown(world)


def _train(recipe: Recipe, run_dir: Path, resume: bool, dev: torch.device, world: distributed.World,
           registry: Registry, cache_dir: Path | None, console: Console,
           on_step: Callable[[int, dict[str, float]], None] | None) -> TrainResult:
    if run_dir.exists() and not run_dir.is_dir():
        raise DisentangleError(f"run directory {run_dir} is a file", hint="pass another --run-dir")
    if not resume and (run_dir / CHECKPOINT).exists():
        raise DisentangleError(f"{run_dir} already holds a run", hint=f"continue it with --resume {run_dir}, "
                               "or pass another --run-dir")
    cfg = recipe.train
    distributed.check_batch_size(cfg.batch_size, world)
    seed_everything(cfg.seed)  # the same initial weights in every process
    with distributed.main_first(world):  # rank 0 builds dataset caches, the others read them
        pipe = build_pipeline(recipe, dev, registry, cache_dir)
    model, objectives = pipe.model, pipe.objectives
    split = pipe.data.split("train")
    n, bsz = len(split), cfg.batch_size
    steps_per_epoch = n // bsz
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)

    with distributed.main_first(world):  # pseudo-label caches likewise
        for name, obj in objectives.items():
            console.print(f"preparing {name} …")
            _call(f"preparing '{name}'", obj.prepare, pipe.data, pipe.ctx)

    params = [p for p in list(model.parameters()) + list(objectives.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = 0
    ckpt_path = run_dir / CHECKPOINT
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        ckpt = load_checkpoint(ckpt_path, dev)
        _load_state(model, ckpt["model"], "model", ckpt_path)
        _load_state(objectives, ckpt["objectives"], "task/regularizer state", ckpt_path)
        try:
            opt.load_state_dict(ckpt["optimizer"])
        except ValueError as exc:
            raise DisentangleError(f"{ckpt_path}: the optimizer state does not fit the recipe: {exc}") from None
        step = int(ckpt["step"])
        _set_rng_state(ckpt["rng"])
        if world.active:  # the checkpoint holds rank 0's random state; the others draw anew
            torch.manual_seed(cfg.seed * 1_000_003 + step * 1009 + world.rank)
        if world.is_main:
            _truncate_metrics(metrics_path, step)
        console.print(f"resuming {run_dir} at step {step}/{total}")
    else:
        if world.active:  # per-process noise (reparameterisation, shuffles) must differ
            torch.manual_seed(cfg.seed * 1_000_003 + world.rank)
        if world.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            metrics_path.unlink(missing_ok=True)
    if world.is_main:
        save_recipe(recipe, run_dir / "recipe.toml")
        env = {**_environment(pipe, registry), "world_size": world.size}
        atomic_write_text(json.dumps(env, indent=2, default=str), run_dir / "environment.json")

    def checkpoint() -> None:
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise TrainingError(f"the weights became non-finite by step {step}; the last good checkpoint "
                                f"({ckpt_path}, if any) was kept", hint="lower train.lr or set train.grad_clip")
        if world.is_main:
            atomic_torch_save({"format": CHECKPOINT_FORMAT, "step": step, "total_steps": total,
                               "model": model.state_dict(), "objectives": objectives.state_dict(),
                               "optimizer": opt.state_dict(), "rng": _rng_state()}, ckpt_path)

    model.train()
    objectives.train()
    start = time.perf_counter()
    last: dict[str, float] = {}
    log = open(metrics_path, "a") if world.is_main else contextlib.nullcontext(None)
    with progress_bar(disable=not world.is_main) as prog, log:
        task = prog.add_task("training", total=total, completed=step, info="")
        while step < total:
            epoch, offset = divmod(step, steps_per_epoch)
            batches = distributed.shard(epoch_batches(n, bsz, cfg.seed, epoch)[offset:].tolist(), world)
            for batch in make_loader(split, batches, cfg.num_workers, seed=cfg.seed + epoch,
                                     pin_memory=dev.type == "cuda"):
                batch = to_device(batch, dev)
                out = _call(f"step {step + 1}: the model (encoder '{recipe.encoder.use}', decoder "
                            f"'{recipe.decoder.use}')", model, batch["x"])
                terms = {"loss": out.vae_loss, "vae": out.vae_loss, "recon": out.recon_nll.mean(),
                         "kl_f": out.kl_f.mean(), "kl_z": out.kl_z.mean()}
                loss = out.vae_loss
                for name, obj in objectives.items():
                    value = _call(f"step {step + 1}: the loss of '{name}'", obj.loss, batch, out, model)
                    terms[name] = value
                    loss = loss + pipe.weights[name] * value
                terms["loss"] = loss
                values = {k: float(v.detach()) for k, v in terms.items()}
                bad = [k for k, x in values.items() if not math.isfinite(x)]
                if distributed.any_true(bool(bad), world, dev):
                    raise TrainingError(
                        f"non-finite loss at step {step + 1} ({', '.join(bad) or 'in another process'}); training "
                        f"stopped and the last good checkpoint ({ckpt_path}, if any) was kept",
                        hint="lower train.lr, set train.grad_clip, or check the data for NaNs; "
                             f"then `disentangle run --resume {run_dir}`")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                distributed.average_gradients(params, world)
                grad_norm = nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip is not None else math.inf)
                if not torch.isfinite(grad_norm):  # identical in every process after averaging
                    raise TrainingError(
                        f"non-finite gradients at step {step + 1}; training stopped before the update and the "
                        f"last good checkpoint ({ckpt_path}, if any) was kept",
                        hint="lower train.lr or set train.grad_clip; then `disentangle run --resume "
                             f"{run_dir}`")
                _call(f"step {step + 1}: the optimizer update (train.lr = {cfg.lr:g})", opt.step)
                step += 1
                last = values
                if world.is_main:
                    log.write(json.dumps({"step": step, "epoch": epoch, **values}) + "\n")
                if step % cfg.log_every == 0 or step == total:
                    if world.is_main:
                        log.flush()
                    info = "  ".join(f"{k} {v:.3g}" for k, v in values.items() if k != "vae")
                    prog.update(task, completed=step, info=info)
                if on_step is not None:
                    on_step(step, values)
                if step % cfg.checkpoint_every == 0 or step == total:
                    if world.is_main:
                        log.flush()
                    checkpoint()
                if step >= total:
                    break
    seconds = time.perf_counter() - start
    if world.is_main and (total == 0 or not ckpt_path.exists()):
        checkpoint()
    console.print(f"trained {step} steps in {seconds:.1f} s ({step / max(seconds, 1e-9):.2f} steps/s) on {dev}"
                  + (f" x {world.size} processes" if world.active else ""))
    results = evaluate(pipe, run_dir, console=console) if world.is_main else {}
    distributed.barrier(world)
    return TrainResult(run_dir, step, total, seconds, last, results)


# ----- evaluation and sampling ---------------------------------------------------------------------

def _batches(split: Any, batch_size: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    n = len(split) if limit is None else min(limit, len(split))
    order = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    yield from make_loader(split, order)


def evaluate(pipe: Pipeline, run_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Pictures (reconstructions, generations, z_f/z_1:T swaps) and the recipe's metrics."""
    from disentangle.visualize import save_pictures

    console = console or Console(stderr=True)
    model = pipe.model.eval()
    results: dict[str, Any] = {}
    if pipe.recipe.eval.images:
        written = save_pictures(model, pipe.data, run_dir / "images", pipe.recipe.eval.num_images, pipe.device)
        if written:
            console.print(f"pictures: {', '.join(str(p) for p in written)}")
    for name, metric in pipe.metrics.items():
        with torch.no_grad():
            results[name] = _call(f"metric '{name}'", metric.compute, model, pipe.data, pipe.device)
    if results:
        atomic_write_text(json.dumps(results, indent=2), run_dir / "eval.json")
        for name, values in results.items():
            console.print(f"[bold]{name}[/]: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    return results


def run_recipe(run_dir: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """The resolved recipe saved in a run directory, with ``overrides`` applied."""
    recipe_path = Path(run_dir) / "recipe.toml"
    if not recipe_path.is_file():
        raise DisentangleError(f"{run_dir} is not a run directory (no recipe.toml)",
                               hint="pass the --run-dir of a `disentangle run`")
    return parse_recipe(apply_overrides(read_toml(recipe_path), overrides), str(recipe_path), registry)


def load_run(run_dir: str | Path, device: str = "auto", registry: Registry | None = None,
             overrides: tuple[str, ...] = ()) -> Pipeline:
    """Rebuild a finished (or interrupted) run from its resolved recipe and last checkpoint."""
    run_dir = Path(run_dir)
    recipe = run_recipe(run_dir, overrides, registry)
    dev = resolve_device(device)
    pipe = build_pipeline(recipe, dev, registry)
    ckpt = load_checkpoint(run_dir / CHECKPOINT, dev)
    _load_state(pipe.model, ckpt["model"], "model", run_dir / CHECKPOINT)
    _load_state(pipe.objectives, ckpt["objectives"], "task/regularizer state", run_dir / CHECKPOINT)
    pipe.model.eval()
    return pipe


@torch.no_grad()
def sample(pipe: Pipeline, keep: str, seed: int = 0, batch_size: int | None = None,
           limit: int | None = None) -> dict[str, np.ndarray]:
    """For each test sequence keep its z_f (``keep="static"``) or z_1:T (``"dynamic"``), sample the
    other factor from its prior, and return the generated sequences with the test labels."""
    if keep not in ("static", "dynamic"):
        raise DisentangleError(f"--keep must be 'static' or 'dynamic', not {keep!r}")
    torch.manual_seed(seed)
    model, split = pipe.model.eval(), pipe.data.split("test")
    seqs, labels = [], {}
    for batch in _batches(split, batch_size or pipe.recipe.eval.batch_size, limit):
        x = batch["x"].to(pipe.device)
        f, z = model.encode(x)
        if keep == "static":
            gen = model.generate(len(x), x.shape[1], f=f)
        else:
            gen = model.generate(len(x), x.shape[1], z=z)
        seqs.append(pipe.data.export(gen))
        for k, v in batch["labels"].items():
            labels.setdefault(k, []).append(v.numpy())
    out = {"sequences": np.concatenate(seqs)}
    out.update({f"labels_{k}": np.concatenate(v) for k, v in labels.items()})
    return out
