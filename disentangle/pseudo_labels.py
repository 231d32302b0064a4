"""A task that predicts per-frame pseudo-labels from z_t: compute once, cache, index, a head, a loss.

A subclass says what the labels are; :class:`PseudoLabelTask` does the rest:

- ``name`` (class attribute): the cache folder ``<cache_dir>/<name>/`` and the prefix of messages;
- ``loss_kind`` (class attribute): ``"cross-entropy"`` (soft or multi-hot targets ``(N, T, width)``,
  each frame normalised to sum 1), ``"binary"`` (BCE with logits, targets in [0, 1]) or
  ``"regression"`` (mean squared error);
- ``labels_version`` (class attribute): part of the cache key; bump it when ``compute_labels`` changes;
- :meth:`compute_labels` ``(data) -> np.ndarray``: labels of every train sequence, in split order;
- :meth:`cache_params`: the config values that change the labels (the cache key adds the data's
  fingerprint, ``name`` and ``labels_version``);
- ``width`` and ``hidden`` (constructor arguments): the target width (``None``: one scalar per frame,
  targets ``(N, T)``) and the hidden width of the head ``Linear(z_t_dim, hidden) -> ReLU -> Linear(hidden,
  width or 1)``, kept as ``self.head`` (so the state_dict keys are ``head.0.*`` and ``head.2.*``).

Optional: :meth:`cache_shape` (when the cached array is not the targets themselves) and
:meth:`make_targets` (cached array -> targets ``(N, T[, width])``, e.g. a normalisation that should not
invalidate the cache).

**Masks.** A NaN target means "no label for this frame" (e.g. no face found): it adds no loss, and the
loss is the mean over the labelled entries only (for cross-entropy, a frame is unlabelled when any
of its entries is NaN). ``labelled_fraction`` says which share of the train targets is labelled.

The targets are a plain attribute (``self.labels``), not a buffer: they stay out of ``state_dict`` and
so out of checkpoints, which load without calling :meth:`prepare`; they move to the loss's device once.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.interfaces import Batch, BuildContext, SequenceData, Task
from disentangle.io import cached_array, fingerprint, track

if TYPE_CHECKING:  # pragma: no cover
    from disentangle.model import S3VAE, S3VAEOutput

LossKind = Literal["cross-entropy", "binary", "regression"]
LOSS_KINDS = ("cross-entropy", "binary", "regression")


def label_sequences(data: SequenceData, label: Callable[[int, dict[str, Any]], np.ndarray], description: str,
                    workers: int = 1, dtype: Any = None) -> np.ndarray:
    """``label(i, item)`` for every item of the train split, in order, with a progress bar, stacked
    into ``(N, ...)`` (``dtype``: that of the first result unless given).

    With ``workers > 1`` the items are labelled by a thread pool (worth it when ``label`` releases the
    GIL, as OpenCV and numpy do); the result is the same. ``workers = 0`` means the CPU count, at most 8."""
    train = data.split("train")
    n = len(train)
    if n == 0:
        raise DisentangleError(f"{description}: the train split is empty", hint="the dataset has no train sequences")
    workers = workers or min(8, os.cpu_count() or 1)

    def one(i: int) -> np.ndarray:
        return np.asarray(label(i, train[i]))

    out: np.ndarray | None = None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(one, range(n)) if workers > 1 else map(one, range(n))  # both in order
        for i, labels in enumerate(track(results, total=n, description=description)):
            if out is None:
                out = np.zeros((n, *labels.shape), dtype=dtype or labels.dtype)
            out[i] = labels
    assert out is not None
    return out


class PseudoLabelTask(Task):
    """Base of tasks that predict per-frame pseudo-labels of the train split from z_t (see the module
    docstring). Subclass it, set ``name`` and ``loss_kind``, implement :meth:`compute_labels` and
    :meth:`cache_params`, and call ``super().__init__(config, ctx, width=..., hidden=...)``."""

    name: ClassVar[str] = ""
    loss_kind: ClassVar[LossKind] = "regression"
    labels_version: ClassVar[int] = 1

    def __init__(self, config: Any, ctx: BuildContext, *, width: int | None, hidden: int):
        super().__init__()
        who = self.name or type(self).__name__
        if not self.name:
            raise DisentangleError(f"{type(self).__name__} sets no `name`",
                                   hint="give the PseudoLabelTask subclass a class attribute name = \"...\"")
        if self.loss_kind not in LOSS_KINDS:
            raise DisentangleError(f"{who}: unknown loss_kind '{self.loss_kind}'",
                                   hint=f"use one of {', '.join(LOSS_KINDS)}")
        if width is not None and width < 1:
            raise DisentangleError(f"{who}: the target width must be >= 1 or None, got {width}")
        if self.loss_kind == "cross-entropy" and (width is None or width < 2):
            raise DisentangleError(f"{who}: a cross-entropy over classes needs width >= 2, got {width}",
                                   hint='for one yes/no label per frame use loss_kind = "binary"')
        if ctx.model is None:
            raise DisentangleError(f"{who} needs the model sizes (ctx.model)")
        self.config = config
        self.width = width
        self.head = nn.Sequential(nn.Linear(ctx.model.z_t_dim, hidden), nn.ReLU(), nn.Linear(hidden, width or 1))
        #: Targets ``(N, T[, width])`` float32 after :meth:`prepare` (a plain attribute: not in checkpoints).
        self.labels: torch.Tensor | None = None
        #: The cache file read or written by :meth:`prepare`.
        self.cache_path: Path | None = None
        #: Share of the train targets that are labelled (not NaN), after :meth:`prepare`.
        self.labelled_fraction: float | None = None
        self._masked = False

    # ----- what subclasses give ---------------------------------------------------------------------

    def compute_labels(self, data: SequenceData) -> np.ndarray:
        """The array to cache for the train split of ``data``, ``(N, T[, width])`` unless
        :meth:`cache_shape` says otherwise. :func:`label_sequences` does the loop and the progress bar."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_labels(data)")

    def cache_params(self) -> tuple[Any, ...]:
        """The parameters that change the labels (JSON-able), e.g. ``(config.grid, config.top_k)``."""
        return ()

    def cache_shape(self, data: SequenceData) -> tuple[int, ...]:
        """The shape the cached array must have (checked on every load)."""
        return self.target_shape(data)

    def make_targets(self, cached: np.ndarray) -> np.ndarray:
        """Targets ``(N, T[, width])`` from the cached array (default: the array itself)."""
        return cached

    # ----- what the base does -----------------------------------------------------------------------

    def target_shape(self, data: SequenceData) -> tuple[int, ...]:
        n = len(data.split("train"))
        return (n, data.spec.seq_len) + ((self.width,) if self.width is not None else ())

    def cache_key(self, data: SequenceData) -> str:
        """``fingerprint(data.fingerprint, name, labels_version, *cache_params())``."""
        return fingerprint(data.fingerprint, self.name, self.labels_version, *self.cache_params())

    def cache_file(self, data: SequenceData, ctx: BuildContext) -> Path:
        return Path(ctx.cache_dir) / self.name / f"{self.cache_key(data)}.npy"

    def prepare(self, data: SequenceData, ctx: BuildContext) -> None:
        """Load the cached labels of ``data`` or compute and cache them; check their shape."""
        path = self.cache_file(data, ctx)
        cached = cached_array(path, lambda: self.compute_labels(data), sources=self.cache_key(data))
        want = self.cache_shape(data)
        if tuple(cached.shape) != tuple(want):
            raise DisentangleError(f"{self.name} labels in {path} have shape {tuple(cached.shape)}, expected {want}",
                                   hint=f"`disentangle cache clear {path}`; it is recomputed on the next run")
        targets = np.asarray(self.make_targets(cached), dtype=np.float32)
        if targets.shape != self.target_shape(data):
            raise DisentangleError(
                f"{self.name}: make_targets() turned the labels of {path} into shape {targets.shape}, "
                f"expected {self.target_shape(data)}", hint=f"fix {type(self).__name__}.make_targets")
        finite = np.isfinite(targets)
        labelled = finite.all(-1) if self.loss_kind == "cross-entropy" else finite
        self._masked = not bool(labelled.all())
        self.labelled_fraction = float(labelled.mean()) if labelled.size else 1.0
        self.cache_path = path
        self.labels = torch.from_numpy(targets)

    def predict(self, z: torch.Tensor) -> torch.Tensor:
        """Head outputs from ``z_1:T`` ``(B, T, z_t_dim)``: ``(B, T, width)``, or ``(B, T)`` when
        ``width`` is None (logits for cross-entropy and binary, values for regression)."""
        y = self.head(z)
        return y.squeeze(-1) if self.width is None else y

    def targets_for(self, batch: Batch, device: torch.device) -> torch.Tensor:
        """The targets of the batch's sequences, ``(B, T[, width])``, picked by ``batch["index"]``."""
        if self.labels is None:
            raise DisentangleError(f"{self.name}: prepare() must run before loss()")
        if self.labels.device != device:
            self.labels = self.labels.to(device)  # once: later batches find them there
        return self.labels[batch["index"].to(device, torch.long)]

    def loss(self, batch: Batch, out: "S3VAEOutput", model: "S3VAE") -> torch.Tensor:
        z = out.z
        target = self.targets_for(batch, z.device)
        if target.shape[1] != z.shape[1]:
            raise DisentangleError(
                f"{self.name} labels have {target.shape[1]} time steps but the batch has {z.shape[1]}")
        return self.loss_from(self.predict(z), target)

    def loss_from(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of ``loss_kind`` between head outputs and targets, averaged over the labelled entries."""
        if self.loss_kind == "cross-entropy":
            valid = torch.isfinite(target).all(-1) if self._masked else None
            if valid is not None:
                target = torch.where(valid[..., None], target, torch.zeros_like(target))
            target = target / target.sum(-1, keepdim=True).clamp_min(1.0)
            per = -(target * F.log_softmax(prediction, dim=-1)).sum(-1)
        else:
            valid = torch.isfinite(target) if self._masked else None
            if valid is not None:
                target = torch.where(valid, target, torch.zeros_like(target))
            if self.loss_kind == "binary":
                per = F.binary_cross_entropy_with_logits(prediction, target, reduction="none")
            else:
                per = (prediction - target) ** 2
        if valid is None:
            return per.mean()
        return (per * valid).sum() / valid.sum().clamp_min(1)
