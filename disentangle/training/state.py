"""Run state: seeding, the random-number generators' state, and checkpoints."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.io import atomic_torch_save, safe_torch_load

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
                    optimizer: torch.optim.Optimizer, rng_ranks: list[dict[str, Any]] | None = None,
                    recipe: str | None = None) -> None:
    """Write ``path`` atomically: readers see the previous checkpoint or this one, never a mix.
    ``rng_ranks``: every training process's random state (data-parallel runs), by rank.
    ``recipe`` (the resolved recipe's TOML) travels with the weights, so a reader never pairs them
    with another recipe.toml."""
    ckpt = {"format": CHECKPOINT_FORMAT, "step": step, "total_steps": total_steps,
            "model": model.state_dict(), "objectives": objectives.state_dict(),
            "optimizer": optimizer.state_dict(), "rng": rng_state()}
    if rng_ranks and len(rng_ranks) > 1:
        ckpt["rng_ranks"] = rng_ranks
    if recipe is not None:
        ckpt["recipe"] = recipe
    atomic_torch_save(ckpt, path)


#: What every checkpoint holds (``recipe`` is optional: checkpoints before it existed lack it).
CHECKPOINT_KEYS = ("format", "step", "total_steps", "model", "objectives", "optimizer", "rng")
_DAMAGED = "the file is damaged; restore it, or start a new run"


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read and check a checkpoint: a missing, empty, unreadable or incomplete file is named."""
    if not path.is_file():
        raise DisentangleError(f"no checkpoint at {path}", hint="is this a run directory written by "
                               "`disentangle run`? Runs write checkpoints/last.pt every train.checkpoint_every steps")
    ckpt = safe_torch_load(path, "checkpoint", hint=_DAMAGED, map_location=device)
    if not isinstance(ckpt, dict):
        raise DisentangleError(f"{path} is not a disentangle checkpoint: it holds a {type(ckpt).__name__}, "
                               f"not a dict with {', '.join(CHECKPOINT_KEYS)}", hint=_DAMAGED)
    if "format" in ckpt and ckpt["format"] != CHECKPOINT_FORMAT:
        raise DisentangleError(f"{path}: unknown checkpoint format {ckpt['format']!r}")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise DisentangleError(f"{path} is not a complete disentangle checkpoint: missing {', '.join(missing)}",
                               hint=_DAMAGED)
    wrong = [k for k in ("model", "objectives", "optimizer", "rng") if not isinstance(ckpt[k], dict)]
    if wrong or not isinstance(ckpt["step"], int):
        raise DisentangleError(f"{path} is not a valid disentangle checkpoint: "
                               f"{', '.join(wrong or ['step'])} has the wrong type", hint=_DAMAGED)
    return ckpt


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (and {len(keys) - n} more)" if len(keys) > n else "")


def load_state(module: nn.Module, state: dict[str, Any], what: str, path: Path) -> None:
    """``module.load_state_dict(state)``; a mismatch names the checkpoint, the first mismatched keys
    and what to do."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing {_first(missing)}")
    if unexpected:
        problems.append(f"unexpected {_first(unexpected)}")
    if shapes:
        problems.append(f"different shapes (checkpoint vs recipe): {_first(shapes)}")
    try:
        if problems:
            raise RuntimeError("; ".join(problems))
        module.load_state_dict(state)
    except RuntimeError as exc:
        reason = "; ".join(problems) or str(exc).splitlines()[0]
        raise DisentangleError(f"{path}: the checkpoint's {what} does not fit the recipe: {reason}",
                               hint="model sizes, components and their parameters must match the run's "
                                    "recipe.toml; start a new run to change them") from None
