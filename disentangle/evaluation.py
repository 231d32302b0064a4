"""What a metric is given: :class:`EvalContext`, built once per evaluation and shared by its metrics.

It offers the model, the data, the device and a seed, batched iteration with ``eval.batch_size``,
the test split encoded once (posterior means and standard deviations of z_f and z_1:T, labels,
per-item metadata; the reconstruction error when a metric first reads it) and cached for the whole
evaluation, and generation with one factor kept and the other drawn from its prior (what
``disentangle sample`` exports and judge metrics score).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterator

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
    _recon_sq_err: np.ndarray | Callable[[], np.ndarray] = attrs.field(repr=False, eq=False)
    """The array :attr:`recon_sq_err`, or a function that computes it when first asked for."""
    elements: int
    """Elements per sequence (T times the frame size)."""
    f_std: np.ndarray | None = None
    """Posterior standard deviations of z_f ``(N, z_f_dim)`` (None where not recorded)."""
    z_std: np.ndarray | None = None
    """Posterior standard deviations of z_1:T ``(N, T, z_t_dim)`` (None where not recorded)."""

    def __len__(self) -> int:
        return len(self.f)

    @property
    def recon_sq_err(self) -> np.ndarray:
        """Summed squared reconstruction error of each sequence ``(N,)``, decoded from the posterior
        means. :meth:`EvalContext.encoded` computes it only when a metric first reads it."""
        err = self._recon_sq_err
        return err() if callable(err) else err

    @property
    def recon_mse(self) -> float:
        """Mean squared error per element of the reconstructions of these sequences."""
        return float(self.recon_sq_err.sum() / max(len(self) * self.elements, 1))

    def sample(self, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One draw ``(z_f (N, z_f_dim), z_1:T (N, T, z_t_dim))`` from each sequence's posterior."""
        if self.f_std is None or self.z_std is None:
            raise DisentangleError("these codes carry no posterior standard deviations to sample with",
                                   hint="encode them with EvalContext.encoded()")

        def draw(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
            noise = torch.randn(mean.shape, generator=generator, dtype=torch.float64).numpy()
            return (mean + std * noise).astype(mean.dtype)

        return draw(self.f, self.f_std), draw(self.z, self.z_std)


class EvalContext:
    """One evaluation of one model on one dataset (see the module docstring)."""

    def __init__(self, model: "S3VAE", data: SequenceData, device: torch.device | str = "cpu",
                 batch_size: int = 128, seed: int = 0):
        self.model, self.data, self.device = model, data, torch.device(device)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self._encoded: dict[str, Encoded] = {}
        self._recon_sq_err: dict[str, np.ndarray] = {}

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
        """The first ``limit`` sequences of ``split`` (all when None), encoded once per evaluation.
        Their reconstruction error is computed, also once, when a metric first reads it."""
        n = len(self.data.split(split)) if limit is None else min(limit, len(self.data.split(split)))
        have = self._encoded.get(split)
        if have is None or len(have) < n:
            have = self._encoded[split] = self._encode(split, n)
        if len(have) == n:
            return have
        cut = (lambda a: None if a is None else a[:n])
        return Encoded(have.f[:n], have.z[:n], {k: v[:n] for k, v in have.labels.items()},
                       {k: v[:n] for k, v in have.meta.items()}, lambda: self._reconstruction(split, n),
                       have.elements, cut(have.f_std), cut(have.z_std))

    def _encode(self, split: str, n: int) -> Encoded:
        model = self.model.eval()
        fs, zs, f_stds, z_stds, labels, meta, elements = [], [], [], [], {}, {}, 0
        for batch in self.batches(split, n):
            x = batch["x"]
            for means, stds, (mean, logvar) in zip((fs, zs), (f_stds, z_stds), model.posteriors(x)):
                means.append(mean.float().cpu().numpy())
                stds.append(torch.exp(0.5 * logvar.float()).cpu().numpy())
            for k, v in batch["labels"].items():
                labels.setdefault(k, []).append(v.cpu().numpy())
            for k, v in batch.get("meta", {}).items():
                meta.setdefault(k, []).extend(v.tolist() if isinstance(v, torch.Tensor) else list(v))
            elements = x[0].numel()
        if not fs:
            raise DisentangleError(f"the {split} split is empty: nothing to evaluate")
        return Encoded(np.concatenate(fs), np.concatenate(zs), {k: np.concatenate(v) for k, v in labels.items()}, meta,
                       lambda: self._reconstruction(split, n), elements,
                       np.concatenate(f_stds), np.concatenate(z_stds))

    @torch.no_grad()
    def _reconstruction(self, split: str, n: int) -> np.ndarray:
        """Summed squared error ``(n,)`` of the first ``n`` sequences of ``split`` decoded from their
        posterior means (those :meth:`encoded` holds), computed once for the longest prefix asked."""
        have = self._recon_sq_err.get(split)
        if have is None or len(have) < n:
            codes, model, errors, start = self._encoded[split], self.model.eval(), [], 0
            for batch in self.batches(split, n):
                x = batch["x"]
                rows = slice(start, start + len(x))
                f, z = (torch.from_numpy(a[rows]).to(self.device) for a in (codes.f, codes.z))
                recon = model.decoder.mean(model.decode(f, z))
                errors.append(((recon.float() - x) ** 2).flatten(1).sum(1).double().cpu().numpy())
                start += len(x)
            have = self._recon_sq_err[split] = np.concatenate(errors)
        return have[:n]

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
