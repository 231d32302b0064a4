"""``motion-energy``: a self-supervision signal for the dynamic code z_t, as a disentangle plug-in.

The pseudo-label of frame ``t`` is its *motion energy*: the mean absolute difference between
frame ``t`` and frame ``t-1``, averaged over every element of the frame::

    e_t = mean(|x_t - x_{t-1}|)          for t = 1 .. T-1

Frame 0 has no predecessor. With ``first_frame = "copy"`` (the default) it gets ``e_1``, the energy
between frames 0 and 1 (the same convention as the built-in ``flow-grid`` task); with
``first_frame = "zero"`` it gets 0.

With ``normalize = true`` (the default) every energy is divided by the mean of all the
``e_t, t >= 1`` of the training split, so the targets have mean 1 on the training set whatever the
data's value range and frame size (a dataset without any motion keeps its all-zero targets). With
``normalize = false`` the raw energies are the targets.

A small head ``z_t -> Linear(z_t_dim, hidden) -> ReLU -> Linear(hidden, 1)`` predicts the target of
every frame from ``z_t`` (``out.z``, the posterior samples), with a mean-squared-error loss averaged
over batch and time. The task is modality-free: it works for any frame shape (images, filterbanks,
...), as long as sequences have at least two frames.

The task is a :class:`disentangle.PseudoLabelTask` (``loss_kind = "regression"``, one scalar per
frame): the base class computes the labels once, caches them, checks their shape, picks each batch's
rows by ``batch["index"]``, builds the head and computes the loss. This module only says what the
labels are. The raw energies ``(N, T-1)`` (float32) of the training split are cached in
``<cache_dir>/motion-energy/<fingerprint(data.fingerprint, "motion-energy", CACHE_VERSION)>.npy``;
``first_frame`` and ``normalize`` are applied after loading (:meth:`MotionEnergy.make_targets`), so
changing them does not recompute the cache.

This module imports nothing from disentangle but its public API (``disentangle.__all__``).
"""

from __future__ import annotations

from typing import Literal

import attrs
import numpy as np
import torch

import disentangle

__all__ = ["CACHE_VERSION", "MotionEnergy", "MotionEnergyConfig", "compute_energies", "make_targets",
           "motion_energy", "register_tasks"]

#: Part of the cache key: bump it whenever the energy computation changes.
CACHE_VERSION = 1


@attrs.frozen
class MotionEnergyConfig:
    """Recipe parameters of ``motion-energy`` (``weight`` is added by the core)."""

    hidden: int = attrs.field(default=32, validator=disentangle.validators.positive_int)
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
    return disentangle.label_sequences(data, lambda i, item: motion_energy(item["x"]),
                                       description="motion-energy labels", dtype=np.float32)


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

class MotionEnergy(disentangle.PseudoLabelTask):
    """Predict each frame's motion energy from ``z_t`` (see the module docstring)."""

    Config = MotionEnergyConfig
    name = "motion-energy"  # the cache folder and the prefix of messages
    loss_kind = "regression"  # mean squared error
    labels_version = CACHE_VERSION  # part of the cache key

    def __init__(self, config: MotionEnergyConfig, ctx: disentangle.BuildContext):
        if ctx.data is not None and ctx.data.seq_len < 2:
            raise disentangle.DisentangleError(
                f"motion-energy needs sequences of at least 2 frames; the dataset has seq_len = {ctx.data.seq_len}",
                hint="use a dataset with longer sequences, or another task")
        # width=None: one scalar target per frame, targets (N, T), predictions (B, T).
        super().__init__(config, ctx, width=None, hidden=config.hidden)

    def compute_labels(self, data: disentangle.SequenceData) -> np.ndarray:
        """The raw energies ``(N, T-1)``: what is cached (independent of ``first_frame``/``normalize``)."""
        return compute_energies(data)

    def cache_shape(self, data: disentangle.SequenceData) -> tuple[int, ...]:
        return (len(data.split("train")), data.spec.seq_len - 1)

    def make_targets(self, cached: np.ndarray) -> np.ndarray:
        return make_targets(cached, self.config.first_frame, self.config.normalize)

    @property
    def targets(self) -> torch.Tensor | None:
        """The targets ``(N, T)`` after :meth:`prepare` (the base class keeps them as ``labels``)."""
        return self.labels


@disentangle.hookimpl
def register_tasks(register):
    register("motion-energy", MotionEnergy)
