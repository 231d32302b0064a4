"""A plug-in written only against the docs/plugins.md of the first release (the motion-energy
example as it was then, plus a metric in the old ``compute(model, data, device)`` form), kept
as written then (only the registered names differ, so it can sit beside the example package) so that
tests/test_legacy_plugin.py proves such plug-ins still load and train.
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import disentangle


#: Part of the cache key: bump it whenever the energy computation changes.
CACHE_VERSION = 1


@attrs.frozen
class MotionEnergyConfig:
    """Recipe parameters of ``motion-energy`` (``weight`` is added by the core)."""

    hidden: int = attrs.field(default=32, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])
    """Width of the prediction head's hidden layer."""
    normalize: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Divide the targets by the mean motion energy of the training split (targets average 1)."""
    first_frame: Literal["copy", "zero"] = attrs.field(
        default="copy", validator=attrs.validators.in_(("copy", "zero")))
    """Target of frame 0, which has no predecessor: the energy of frame 1 ("copy") or 0 ("zero")."""


# ----- pseudo-labels -----------------------------------------------------------------------------

def motion_energy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Raw motion energies ``(T-1,)`` of one sequence ``(T, *F)``: entry ``t-1`` is
    ``mean(|x[t] - x[t-1]|)`` over the frame's elements, for ``t = 1 .. T-1``."""
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim < 1 or a.shape[0] < 2:
        raise disentangle.DisentangleError(
            f"motion-energy needs sequences of at least 2 frames; got shape {tuple(a.shape)}")
    diff = np.abs(a[1:] - a[:-1]).reshape(a.shape[0] - 1, -1)
    return diff.mean(axis=1)


def compute_energies(data: disentangle.SequenceData) -> np.ndarray:
    """Raw motion energies ``(N, T-1)`` float32 of every train sequence, in split order."""
    train = data.split("train")
    n, t_len = len(train), data.spec.seq_len
    if n == 0:
        raise disentangle.DisentangleError("motion-energy: the train split is empty")
    out = np.zeros((n, t_len - 1), dtype=np.float32)
    for i in disentangle.track(range(n), total=n, description="motion-energy labels"):
        out[i] = motion_energy(train[i]["x"])
    return out


def make_targets(energies: np.ndarray, first_frame: str = "copy", normalize: bool = True) -> np.ndarray:
    """Per-frame targets ``(N, T)`` float32 from raw energies ``(N, T-1)`` (see the module docstring)."""
    e = np.asarray(energies, dtype=np.float64)
    if normalize:
        scale = float(e.mean())
        if scale > 0:
            e = e / scale
    first = e[:, :1] if first_frame == "copy" else np.zeros_like(e[:, :1])
    return np.concatenate([first, e], axis=1).astype(np.float32)


# ----- the task ----------------------------------------------------------------------------------

class MotionEnergy(disentangle.Task):
    """Predict each frame's motion energy from ``z_t`` (see the module docstring)."""

    Config = MotionEnergyConfig

    def __init__(self, config: MotionEnergyConfig, ctx: disentangle.BuildContext):
        super().__init__()
        if ctx.model is None:
            raise disentangle.DisentangleError("motion-energy needs the model sizes (ctx.model)")
        if ctx.data is not None and ctx.data.seq_len < 2:
            raise disentangle.DisentangleError(
                f"motion-energy needs sequences of at least 2 frames; the dataset has seq_len = {ctx.data.seq_len}",
                hint="use a dataset with longer sequences, or another task")
        self.config = config
        self.head = nn.Sequential(nn.Linear(ctx.model.z_t_dim, config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, 1))
        #: Targets ``(N, T)`` after :meth:`prepare`. A plain attribute, not a buffer: it stays out
        #: of ``state_dict`` and so out of checkpoints (which are loaded without calling prepare).
        self.targets: torch.Tensor | None = None
        self.cache_path = None

    def cache_key(self, data: disentangle.SequenceData) -> str:
        """Depends on the data and the energy computation only, not on ``first_frame``/``normalize``."""
        return disentangle.fingerprint(data.fingerprint, "motion-energy", CACHE_VERSION)

    def prepare(self, data: disentangle.SequenceData, ctx: disentangle.BuildContext) -> None:
        path = ctx.cache_dir / "motion-energy" / f"{self.cache_key(data)}.npy"
        energies = disentangle.cached_array(path, lambda: compute_energies(data))
        want = (len(data.split("train")), data.spec.seq_len - 1)
        if tuple(energies.shape) != want:
            raise disentangle.DisentangleError(
                f"motion-energy cache {path} has shape {tuple(energies.shape)}, expected {want}",
                hint="delete the file; it is recomputed on the next run")
        self.cache_path = path
        targets = make_targets(energies, self.config.first_frame, self.config.normalize)
        self.targets = torch.from_numpy(targets)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Predicted targets ``(B, T)`` from ``z_1:T`` ``(B, T, z_t_dim)``."""
        return self.head(z).squeeze(-1)

    def loss(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
             model: disentangle.S3VAE) -> torch.Tensor:
        if self.targets is None:
            raise disentangle.DisentangleError("motion-energy: prepare() must run before loss()")
        z = out.z
        if self.targets.device != z.device:
            self.targets = self.targets.to(z.device)
        # batch["index"] is each sequence's position in the train split, i.e. its row of targets.
        target = self.targets[batch["index"].to(z.device, torch.long)]
        if target.shape[1] != z.shape[1]:
            raise disentangle.DisentangleError(
                f"motion-energy targets have {target.shape[1]} time steps but the batch has {z.shape[1]}")
        return F.mse_loss(self.predict(z), target)


@disentangle.hookimpl
def register_tasks(register):
    register("legacy-motion-energy", MotionEnergy)


class MeanAbsLatent(disentangle.Metric):
    """Mean |z_f| over the test split, computed the old way (the metric loops over the data itself)."""

    @attrs.frozen
    class Config:
        pass

    def __init__(self, config, ctx):
        self.config = config

    def compute(self, model, data, device):
        split = data.split("test")
        x = torch.stack([split[i]["x"] for i in range(len(split))]).to(device)
        f, _ = model.encode(x)
        return {"mean_abs_z_f": float(f.abs().mean())}


@disentangle.hookimpl
def register_metrics(register):
    register("legacy-mean-abs", MeanAbsLatent)
