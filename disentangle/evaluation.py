"""What a metric is given: :class:`EvalContext`, built once per evaluation and shared by its metrics.

It offers the model, the data, the device and a seed, batched iteration with ``eval.batch_size``,
the test split encoded once (posterior means of z_f and z_1:T, labels, per-item metadata, the
reconstruction error) and cached for the whole evaluation, and generation with one factor kept
and the other drawn from its prior (what ``disentangle sample`` exports and judge metrics score).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any, Iterator

import attrs
import numpy as np
import torch

from disentangle.errors import DisentangleError
from disentangle.interfaces import DataSpec, Metric, SequenceData

if TYPE_CHECKING:  # pragma: no cover
    from disentangle.model import S3VAE

KEEP = ("static", "dynamic")


@attrs.frozen
class Encoded:
    """A split encoded by the model: one row per sequence, in split order."""

    f: np.ndarray
    """Posterior means of z_f ``(N, z_f_dim)``."""
    z: np.ndarray
    """Posterior means of z_1:T ``(N, T, z_t_dim)``."""
    labels: dict[str, np.ndarray]
    """Class labels ``{name: int array (N,)}``."""
    meta: dict[str, list[Any]]
    """Per-item metadata ``{name: list of N}`` (empty when the items carry none)."""
    recon_sq_err: np.ndarray
    """Summed squared reconstruction error of each sequence ``(N,)`` (from the posterior means)."""
    elements: int
    """Elements per sequence (T times the frame size)."""

    def __len__(self) -> int:
        return len(self.f)

    @property
    def recon_mse(self) -> float:
        """Mean squared error per element of the reconstructions of these sequences."""
        return float(self.recon_sq_err.sum() / max(len(self) * self.elements, 1))


class EvalContext:
    """One evaluation of one model on one dataset (see the module docstring)."""

    def __init__(self, model: "S3VAE", data: SequenceData, device: torch.device | str = "cpu",
                 batch_size: int = 128, seed: int = 0):
        self.model, self.data, self.device = model, data, torch.device(device)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self._encoded: dict[str, Encoded] = {}

    @property
    def spec(self) -> DataSpec:
        return self.data.spec

    def generator(self, name: str = "") -> torch.Generator:
        """A CPU generator seeded by the evaluation seed and ``name`` (each metric its own stream)."""
        offset = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
        return torch.Generator().manual_seed(self.seed * 1_000_003 + offset)

    def batches(self, split: str = "test", limit: int | None = None) -> Iterator[dict[str, Any]]:
        """The split in order, ``batch_size`` sequences at a time, on the device (``index``, ``labels``
        and ``meta`` as in training batches)."""
        from disentangle.training.data import iter_batches, to_device

        for batch in iter_batches(self.data.split(split), self.batch_size, limit):
            yield to_device(batch, self.device)

    @torch.no_grad()
    def encoded(self, split: str = "test", limit: int | None = None) -> Encoded:
        """The first ``limit`` sequences of ``split`` (all when None), encoded once per evaluation."""
        n = len(self.data.split(split)) if limit is None else min(limit, len(self.data.split(split)))
        have = self._encoded.get(split)
        if have is None or len(have) < n:
            have = self._encoded[split] = self._encode(split, n)
        if len(have) == n:
            return have
        return Encoded(have.f[:n], have.z[:n], {k: v[:n] for k, v in have.labels.items()},
                       {k: v[:n] for k, v in have.meta.items()}, have.recon_sq_err[:n], have.elements)

    def _encode(self, split: str, n: int) -> Encoded:
        model = self.model.eval()
        fs, zs, labels, meta, sq_err, elements = [], [], {}, {}, [], 0
        for batch in self.batches(split, n):
            x = batch["x"]
            f, z = model.encode(x)
            fs.append(f.float().cpu().numpy())
            zs.append(z.float().cpu().numpy())
            for k, v in batch["labels"].items():
                labels.setdefault(k, []).append(v.cpu().numpy())
            for k, v in batch.get("meta", {}).items():
                meta.setdefault(k, []).extend(v.tolist() if isinstance(v, torch.Tensor) else list(v))
            recon = model.decoder.mean(model.decode(f, z))
            sq_err.append(((recon.float() - x) ** 2).flatten(1).sum(1).double().cpu().numpy())
            elements = x[0].numel()
        if not fs:
            raise DisentangleError(f"the {split} split is empty: nothing to evaluate")
        return Encoded(np.concatenate(fs), np.concatenate(zs), {k: np.concatenate(v) for k, v in labels.items()},
                       meta, np.concatenate(sq_err), elements)

    @torch.no_grad()
    def generate(self, keep: str, split: str = "test", limit: int | None = None,
                 seed: int = 0) -> Iterator[dict[str, Any]]:
        """For each sequence of ``split`` keep its z_f (``keep="static"``) or its z_1:T
        (``"dynamic"``) and draw the other factor from its prior. Yields batches
        ``{"x": generated (B, T, *F), "labels": the source sequences' labels, "index": ...}`` on
        the device; the same ``seed`` gives the same sequences."""
        if keep not in KEEP:
            raise DisentangleError(f"keep must be 'static' or 'dynamic', not {keep!r}")
        torch.manual_seed(seed)
        model = self.model.eval()
        for batch in self.batches(split, limit):
            x = batch["x"]
            f, z = model.encode(x)
            if keep == "static":
                gen = model.generate(len(x), x.shape[1], f=f)
            else:
                gen = model.generate(len(x), x.shape[1], z=z)
            yield {**batch, "x": gen}


def uses_context(metric: Metric) -> bool:
    """True for ``compute(ev)``; False for the older ``compute(model, data, device)``."""
    try:
        params = [p for p in inspect.signature(metric.compute).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return True
    return len(params) < 3


def compute_metric(metric: Metric, ev: EvalContext) -> dict[str, float]:
    """Call a metric in whichever form it was written."""
    if uses_context(metric):
        return metric.compute(ev)
    return metric.compute(ev.model, ev.data, ev.device)  # type: ignore[call-arg]
