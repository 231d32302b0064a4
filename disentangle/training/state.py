"""Run state: seeding, the random-number generators' state, and checkpoints."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.io import atomic_torch_save

CHECKPOINT = Path("checkpoints") / "last.pt"
CHECKPOINT_FORMAT = 1


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (every device) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every generator's state as tensors and plain values (loads with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    # RNG states are CPU byte tensors, whatever map_location the checkpoint was loaded with
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].cpu().numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: Path, *, step: int, total_steps: int, model: nn.Module, objectives: nn.Module,
                    optimizer: torch.optim.Optimizer, recipe: str | None = None) -> None:
    """Write ``path`` atomically: readers see the previous checkpoint or this one, never a mix.
    ``recipe`` (the resolved recipe's TOML) travels with the weights, so a reader never pairs them
    with another recipe.toml."""
    ckpt = {"format": CHECKPOINT_FORMAT, "step": step, "total_steps": total_steps,
            "model": model.state_dict(), "objectives": objectives.state_dict(),
            "optimizer": optimizer.state_dict(), "rng": rng_state()}
    if recipe is not None:
        ckpt["recipe"] = recipe
    atomic_torch_save(ckpt, path)


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise DisentangleError(f"no checkpoint at {path}", hint="is this a run directory written by "
                               "`disentangle run`? Runs write checkpoints/last.pt every train.checkpoint_every steps")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise DisentangleError(f"cannot read checkpoint {path}: {exc}",
                               hint="the file is damaged; restore it or start a new run") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise DisentangleError(f"{path}: unknown checkpoint format {found!r}")
    return ckpt


def load_state(module: nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    """``module.load_state_dict(state)``; a mismatch names the checkpoint and what to do."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise DisentangleError(f"{path}: the checkpoint's {what} does not fit the recipe: {str(exc).splitlines()[0]}",
                               hint="model sizes, components and their parameters must match the run's "
                                    "recipe.toml; start a new run to change them") from None
