"""Building a recipe's components and wiring them into a :class:`Pipeline`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from disentangle.distributed import World
from disentangle.errors import DisentangleError
from disentangle.interfaces import BuildContext, Metric, ModelSpec, SequenceData
from disentangle.io import default_cache_dir
from disentangle.model import S3VAE
from disentangle.recipe import ComponentSpec, Recipe
from disentangle.registry import Registry, get_registry
from disentangle.training.guard import call_plugin


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


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the best available device; anything else is checked to exist."""
    if name not in ("auto", "cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DisentangleError(f"device {name!r}: expected cpu, cuda, mps or auto")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DisentangleError("device 'cuda' was asked for but no CUDA GPU is available",
                               hint="use --device cpu (or auto)")
    if name == "mps" and not _mps_available():
        raise DisentangleError("device 'mps' was asked for but this PyTorch has no usable MPS backend",
                               hint="use --device cpu (or auto)")
    return torch.device(name)


def build_component(registry: Registry, spec: ComponentSpec, ctx: BuildContext, where: str) -> Any:
    """Build one recipe component; a failure names its recipe section and plug-in."""
    comp = registry.get(spec.kind, spec.use)
    return call_plugin(f"{where}: {spec.kind} '{spec.use}' (plug-in '{comp.plugin}')", comp.build,
                       spec.config, ctx, verb="failed to build", hint="check its parameters in the recipe; set DISENTANGLE_DEBUG=1 "
                                              "to see the traceback")


def unique_names(specs: tuple[ComponentSpec, ...]) -> list[str]:
    """Component names as metrics.jsonl columns: a second ``triplet-scc`` becomes ``triplet-scc-2``."""
    names, seen = [], {}
    for spec in specs:
        seen[spec.use] = seen.get(spec.use, 0) + 1
        names.append(spec.use if seen[spec.use] == 1 else f"{spec.use}-{seen[spec.use]}")
    return names


def build_pipeline(recipe: Recipe, device: torch.device | str = "cpu", registry: Registry | None = None,
                   cache_dir: Path | None = None, world: World | None = None) -> Pipeline:
    """Build the dataset, the S3VAE with its encoder/decoder, the objectives and the metrics."""
    registry = registry or get_registry()
    device = torch.device(device)
    world = world or World()
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    seed = recipe.train.seed
    data: SequenceData = build_component(registry, recipe.data,
                                         BuildContext(cache_dir=cache_dir, seed=seed, world=world), "data")
    n_train = len(data.split("train"))
    if n_train < recipe.train.batch_size:
        raise DisentangleError(
            f"data: the training split has {n_train} sequences, fewer than train.batch_size = "
            f"{recipe.train.batch_size}", hint="lower train.batch_size or use more data")
    ctx = BuildContext(cache_dir=cache_dir, seed=seed, data=data.spec,
                       model=ModelSpec(recipe.model.z_f_dim, recipe.model.z_t_dim, recipe.model.hidden_dim),
                       dataset_size=n_train, batch_size=recipe.train.batch_size, world=world)
    encoder = build_component(registry, recipe.encoder, ctx, "model.encoder")
    decoder = build_component(registry, recipe.decoder, ctx, "model.decoder")
    model = S3VAE(encoder, decoder, ctx.model).to(device)
    objectives, weights = nn.ModuleDict(), {}
    for name, spec in zip(unique_names(recipe.objectives), recipe.objectives):
        section = "tasks" if spec.kind == "task" else "regularizers"
        objectives[name] = build_component(registry, spec, ctx, section)
        weights[name] = spec.weight
    objectives.to(device)
    metrics = {name: build_component(registry, spec, ctx, "eval.metrics")
               for name, spec in zip(unique_names(recipe.metrics), recipe.metrics)}
    return Pipeline(recipe, data, model, objectives, weights, metrics, ctx, device)
