"""After training: a run's pictures and metrics, reloading a run, and sample export."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from rich.console import Console

from disentangle.errors import DisentangleError
from disentangle.evaluation import EvalContext, compute_metric
from disentangle.io import atomic_write_text
from disentangle.recipe import Recipe, apply_overrides, parse_recipe, read_toml
from disentangle.registry import Registry
from disentangle.report import write_report
from disentangle.training.build import Pipeline, build_pipeline, resolve_device
from disentangle.training.guard import call_plugin
from disentangle.training.state import CHECKPOINT, load_checkpoint, load_state


def eval_context(pipe: Pipeline) -> EvalContext:
    return EvalContext(pipe.model, pipe.data, pipe.device, pipe.recipe.eval.batch_size, pipe.recipe.train.seed)


def evaluate(pipe: Pipeline, run_dir: str | Path, console: Console | None = None) -> dict[str, Any]:
    """Pictures (reconstructions, generations, z_f/z_1:T swaps), the swaps' sounds (for data with
    ``to_audio``) and the recipe's metrics, written into ``run_dir`` (``images/``, ``eval.json``) and
    returned."""
    from disentangle.sounds import save_sounds
    from disentangle.visualize import save_pictures

    run_dir = Path(run_dir)
    console = console or Console(stderr=True)
    model = pipe.model.eval()
    results: dict[str, Any] = {}
    if pipe.recipe.eval.images:
        written = save_pictures(model, pipe.data, run_dir / "images", pipe.recipe.eval.num_images, pipe.device)
        if written:
            console.print(f"pictures: {', '.join(str(p) for p in written)}")
        heard = save_sounds(model, pipe.data, run_dir / "images", pipe.recipe.eval.num_images, pipe.device)
        if heard:
            console.print(f"sounds: {len(heard)} WAV files in {run_dir / 'images'} (see sounds.txt there)")
    ev = eval_context(pipe)
    for name, metric in pipe.metrics.items():
        with torch.no_grad():
            results[name] = call_plugin(f"metric '{name}'", compute_metric, metric, ev)
    if results:
        atomic_write_text(json.dumps(results, indent=2), run_dir / "eval.json")
        for name, values in results.items():
            console.print(f"[bold]{name}[/]: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items()))
    console.print(f"report: {write_report(run_dir)}")
    return results


def read_run_recipe(run_dir: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """The resolved recipe saved in a run directory, with ``overrides`` applied."""
    recipe_path = Path(run_dir) / "recipe.toml"
    if not recipe_path.is_file():
        raise DisentangleError(f"{run_dir} is not a run directory (no recipe.toml)",
                               hint="pass the --run-dir of a `disentangle run`")
    return parse_recipe(apply_overrides(read_toml(recipe_path), overrides), str(recipe_path), registry)


def load_run(run_dir: str | Path, device: str = "auto", registry: Registry | None = None,
             overrides: Sequence[str] = ()) -> Pipeline:
    """Rebuild a finished (or interrupted) run from its resolved recipe and last checkpoint."""
    run_dir = Path(run_dir)
    recipe = read_run_recipe(run_dir, overrides, registry)
    dev = resolve_device(device)
    ckpt = load_checkpoint(run_dir / CHECKPOINT, dev)
    if isinstance(ckpt.get("recipe"), str):  # the recipe the weights were trained with (a run may be writing)
        raw = tomllib.loads(ckpt["recipe"])
        recipe = parse_recipe(apply_overrides(raw, overrides), str(run_dir / "recipe.toml"), registry)
    pipe = build_pipeline(recipe, dev, registry)
    load_state(pipe.model, ckpt["model"], "model", run_dir / CHECKPOINT)
    load_state(pipe.objectives, ckpt["objectives"], "task/regularizer state", run_dir / CHECKPOINT)
    pipe.model.eval()
    return pipe


def sample(pipe: Pipeline, keep: str, seed: int = 0, batch_size: int | None = None,
           limit: int | None = None) -> dict[str, np.ndarray]:
    """For each test sequence keep its z_f (``keep="static"``) or z_1:T (``"dynamic"``), sample the
    other factor from its prior, and return the generated sequences (as the dataset exports them)
    with the test labels."""
    if keep not in ("static", "dynamic"):
        raise DisentangleError(f"--keep must be 'static' or 'dynamic', not {keep!r}")
    ev = eval_context(pipe)
    if batch_size:
        ev.batch_size = batch_size
    seqs, labels = [], {}
    for batch in ev.generate(keep, limit=limit, seed=seed):
        seqs.append(pipe.data.export(batch["x"]))
        for k, v in batch["labels"].items():
            labels.setdefault(k, []).append(v.cpu().numpy())
    out = {"sequences": np.concatenate(seqs)}
    out.update({f"labels_{k}": np.concatenate(v) for k, v in labels.items()})
    return out
