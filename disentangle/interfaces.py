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

from disentangle.distributed import World

if TYPE_CHECKING:  # pragma: no cover
    from disentangle.evaluation import EvalContext
    from disentangle.model import S3VAE, S3VAEOutput

#: A training/evaluation batch: ``{"x": FloatTensor(B, T, *F), "index": LongTensor(B),
#: "labels": {name: LongTensor(B)}}``, plus ``"meta"`` when the items carry it. ``index`` is the
#: position of each sequence in its split.
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

    - datasets get ``cache_dir``, ``seed`` and ``world`` only;
    - every other kind gets every field, incl. ``dataset_size`` (N) and ``batch_size`` (M).

    ``batch_size`` is the *global* batch of one optimizer step. Under data-parallel training
    (``torchrun``) each of the ``world.size`` processes computes its losses on
    ``batch_size // world.size`` of its sequences; ``world`` says where this process stands.
    """

    cache_dir: Path
    seed: int = 0
    data: DataSpec | None = None
    model: ModelSpec | None = None
    dataset_size: int | None = None
    batch_size: int | None = None
    world: World = World()
    """This process among the training processes (``rank``, ``size``; size 1 without torchrun)."""


@attrs.frozen
class Audio:
    """Sound for data that can be heard: what :meth:`SequenceData.to_audio` returns."""

    waves: torch.Tensor | list[torch.Tensor]
    """One mono waveform per sequence: float ``(B, samples)`` or a list of ``B`` 1-d tensors, in [-1, 1]."""
    sample_rate: int
    """Samples per second, e.g. 16000."""
    method: str = ""
    """How the sound was made, as a short name for file names (e.g. ``"griffin-lim"``); empty when
    the waveform is the data itself."""
    note: str = ""
    """One sentence for listeners, e.g. that the sound is an approximation and of what."""


class SequenceData(abc.ABC):
    """A dataset plug-in's product: train/test splits of equal-length sequences.

    Each split is a ``torch.utils.data.Dataset`` whose items are
    ``{"x": FloatTensor(T, *F), "labels": {name: int}}`` and optionally ``"meta": {name: str | int}``
    (per-item facts that are not class labels: an utterance id, a speaker id, a source file, a
    segment offset; metrics read them, the trainer never gives them to a loss). A split that is an
    :class:`ArraySplit` can be held on the GPU whole.
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

    def to_audio(self, x: torch.Tensor) -> Audio | tuple[torch.Tensor | list[torch.Tensor], int] | None:
        """Optional: map ``(B, T, *F)`` data-space tensors to sound, as an :class:`Audio` or a plain
        ``(waves, sample_rate)``; ``None`` (the default) when the data cannot be heard. ``evaluate``
        then writes the swap's sequences as WAV files beside ``swap.png``."""
        return None

    def export(self, x: torch.Tensor) -> np.ndarray:
        """Map ``(B, T, *F)`` data-space tensors to the array written by ``disentangle sample``.
        Video datasets return uint8 ``(B, T, H, W, C)``; the default is float32 as is."""
        return x.detach().cpu().float().numpy()


def stored_tensor(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A stored array as a tensor, sharing its memory where torch may: a read-only (memory-mapped)
    or non-contiguous numpy array is copied first, as torch warns on, and may write through, a
    tensor over a read-only array."""
    return a if isinstance(a, torch.Tensor) else torch.from_numpy(np.require(a, requirements="CW"))


class ArraySplit(torch.utils.data.Dataset):
    """A split held as arrays, which the trainer may move to the GPU once and index there.

    Implement :meth:`stored_x` (all sequences in their storage dtype, e.g. uint8 video
    ``(N, T, H, W, C)``), :meth:`stored_labels` and :meth:`decode` (a stored batch -> model input
    ``(B, T, *F)`` float, computed on whatever device the batch is on). Items are built from the
    same three, so the host and the device paths give identical batches.
    """

    @abc.abstractmethod
    def stored_x(self) -> np.ndarray | torch.Tensor:
        """Every sequence ``(N, T, ...)`` as stored (a numpy array, memory map or tensor)."""

    def stored_labels(self) -> dict[str, np.ndarray]:
        """Class labels ``{name: int array (N,)}``."""
        return {}

    def stored_meta(self) -> dict[str, Any]:
        """Per-item metadata ``{name: sequence of length N}`` (see :class:`SequenceData`)."""
        return {}

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Stored batch ``(B, T, ...)`` -> float model input ``(B, T, *F)`` on ``x``'s device."""
        return x.float()

    def __len__(self) -> int:
        return int(self.stored_x().shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a split of {n}")
        index = index % n
        stored = self.stored_x()[index: index + 1]
        x = self.decode(stored_tensor(stored))[0]
        item: dict[str, Any] = {"x": x, "labels": {k: int(v[index]) for k, v in self.stored_labels().items()}}
        meta = self.stored_meta()
        if meta:
            item["meta"] = {k: v[index] for k, v in meta.items()}
        return item


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
        """The (unweighted) scalar loss for a training batch.

        An implementation may declare an extra keyword argument ``step`` (the number of optimizer
        steps taken so far, 0 at the first step) and it is passed; one that does not is called
        as above. Under data-parallel training ``batch`` and ``out`` hold this process's shard."""


class Task(Objective):
    """An auxiliary prediction task (the paper's DFP): predicts a pseudo-label from z_1:T."""


class Regularizer(Objective):
    """A regularizer on the latents (e.g. the SCC triplet loss or the MI penalty)."""


class Metric(abc.ABC):
    """An evaluation metric computed on the test split after training.

    Write ``compute(self, ev)``: ``ev`` is the :class:`disentangle.EvalContext` of this evaluation
    (the model, the data, the device, batches of ``eval.batch_size``, the test split encoded once
    and shared by every metric, generation with one factor kept, seeded generators). The older
    form ``compute(self, model, data, device)`` is still called as before."""

    @abc.abstractmethod
    def compute(self, ev: "EvalContext") -> dict[str, float]:
        """Return named scalar results."""
