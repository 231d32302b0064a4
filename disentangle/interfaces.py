"""What each kind of component builds: the contracts between the core and plug-ins.

Every component is made by a *factory* called as ``factory(config, ctx)``: ``config`` is an
instance of the component's attrs config class (its recipe parameters) and ``ctx`` is a
:class:`BuildContext`. The core knows no modality: a frame is any tensor of shape
``DataSpec.feature_shape`` (``(3, 64, 64)`` for video, ``(80,)`` for filterbanks).

Shapes used throughout: ``B`` batch, ``T`` time steps, ``*F`` = ``feature_shape``.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import attrs
import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from disentangle.model import S3VAE, S3VAEOutput

#: A training/evaluation batch: ``{"x": FloatTensor(B, T, *F), "index": LongTensor(B),
#: "labels": {name: LongTensor(B)}}``. ``index`` is the position of each sequence in its split.
Batch = dict[str, Any]


@attrs.frozen
class DataSpec:
    """What a dataset's sequences look like."""

    feature_shape: tuple[int, ...]
    """Shape of one frame, e.g. ``(3, 64, 64)`` or ``(80,)``."""
    seq_len: int
    """Number of time steps T of every sequence."""
    static_factors: Mapping[str, int] = attrs.field(factory=dict)
    """Ground-truth static label name -> number of classes (evaluation only, never trained on)."""
    dynamic_factors: Mapping[str, int] = attrs.field(factory=dict)
    """Ground-truth dynamic label name -> number of classes (evaluation only)."""


@attrs.frozen
class ModelSpec:
    """Sizes of the S3VAE backbone."""

    z_f_dim: int
    z_t_dim: int
    hidden_dim: int

    @property
    def latent_dim(self) -> int:
        """Width of the decoder input ``[z_f, z_t]``."""
        return self.z_f_dim + self.z_t_dim


@attrs.frozen
class BuildContext:
    """Handed to every factory. Fields not yet known for a kind are ``None``:

    - datasets get ``cache_dir`` and ``seed`` only;
    - every other kind gets every field, incl. ``dataset_size`` (N) and ``batch_size`` (M).
    """

    cache_dir: Path
    seed: int = 0
    data: DataSpec | None = None
    model: ModelSpec | None = None
    dataset_size: int | None = None
    batch_size: int | None = None


class SequenceData(abc.ABC):
    """A dataset plug-in's product: train/test splits of equal-length sequences.

    Each split is a ``torch.utils.data.Dataset`` whose items are
    ``{"x": FloatTensor(T, *F), "labels": {name: int}}``.
    """

    spec: DataSpec

    @abc.abstractmethod
    def split(self, name: str) -> torch.utils.data.Dataset:
        """Return the split ``"train"`` or ``"test"``."""

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A short string that changes whenever the content changes (keys on-disk caches)."""

    def to_images(self, x: torch.Tensor) -> torch.Tensor | None:
        """Map ``(B, T, *F)`` data-space tensors to ``(B, T, 3, H, W)`` images in [0, 1] for
        pictures, or return ``None`` when the modality has no picture."""
        return None

    def export(self, x: torch.Tensor) -> np.ndarray:
        """Map ``(B, T, *F)`` data-space tensors to the array written by ``disentangle sample``.
        Video datasets return uint8 ``(B, T, H, W, C)``; the default is float32 as is."""
        return x.detach().cpu().float().numpy()


class Encoder(nn.Module):
    """Maps ``x`` ``(B, T, *F)`` to per-step features ``(B, T, out_dim)``."""

    out_dim: int
    #: True when each frame is encoded independently of the others, so that permuting the
    #: frames permutes the features (regularizers may then reuse features instead of re-encoding).
    framewise: bool = False


class Decoder(nn.Module):
    """Maps latents ``[z_f, z_t]`` ``(B, T, latent_dim)`` to the parameters of p(x_t | z_f, z_t)."""

    @abc.abstractmethod
    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``x`` under ``output``, summed over time and features: ``(B,)``."""

    @abc.abstractmethod
    def mean(self, output: torch.Tensor) -> torch.Tensor:
        """The data-space mean of p(x | z) for ``output``: ``(B, T, *F)``."""


class Objective(nn.Module):
    """An extra loss term added to the ELBO with the recipe's ``weight`` (the paper's λ)."""

    def prepare(self, data: SequenceData, ctx: BuildContext) -> None:
        """Called once before training, e.g. to compute and cache pseudo-labels."""

    @abc.abstractmethod
    def loss(self, batch: Batch, out: "S3VAEOutput", model: "S3VAE") -> torch.Tensor:
        """The (unweighted) scalar loss for a training batch."""


class Task(Objective):
    """An auxiliary prediction task (the paper's DFP): predicts a pseudo-label from z_1:T."""


class Regularizer(Objective):
    """A regularizer on the latents (e.g. the SCC triplet loss or the MI penalty)."""


class Metric(abc.ABC):
    """An evaluation metric computed on the test split after training."""

    @abc.abstractmethod
    def compute(self, model: "S3VAE", data: SequenceData, device: torch.device) -> dict[str, float]:
        """Return named scalar results."""
