"""``dependence-probe``: how much z_f tells about z_1:T, measured by a predictor trained afresh on the
frozen codes of the trained model.

A regularizer that penalises the dependence between z_f and z_t (``mi-mws``, ``mi-club``) reports
its own estimate, and ``mi-club``'s estimate comes from a predictor the encoder was trained against:
the encoder may have learned to dodge that predictor rather than to drop the dependence. This
metric is the referee. On the posterior means of the trained model it fits a new predictor
q(z_t | z_f) (a small network; a diagonal Gaussian over the z_t dimensions, shared by the frames)
on the training split, with early stopping on a tenth of those sequences, and scores it on the
test split against the marginal of z_t (a diagonal Gaussian with the training split's mean and
variance):

- ``nats``: held-out ``log q(z_t | z_f) - log p(z_t)``, summed over the frames and averaged over
  the test sequences; an estimate of ``sum_t I(z_f; z_t)`` in the units ``mi-club`` logs. It is
  about 0 when z_f tells nothing about z_t and can go below 0 when q fits nothing;
- ``nats_per_frame``: the same, per frame;
- ``r2``: the share of z_t's variance (all dimensions pooled, in the model's units) that q's mean
  explains on the test split.

Both codes are standardised with the training split's statistics first, so the figures do not
depend on the scale of either code. Posterior means are used, as by ``latent-probe``: a model
cannot lower these figures by widening its posteriors.
"""

from __future__ import annotations

import copy
import math

import attrs
import numpy as np
import torch
from attrs import validators as v
from torch import nn

import disentangle

MAX_LOG_VARIANCE = 10.0
"""q's log variance (in standardised units) is kept within ± this, by a tanh."""


@attrs.frozen
class DependenceProbeConfig:
    fit_sequences: int = attrs.field(default=2000, validator=v.ge(10))
    """How many sequences of the training split (the first ones) to encode for fitting q; a tenth of
    them decide when to stop."""
    max_sequences: int = attrs.field(default=2000, validator=v.ge(1))
    """How many test sequences (the first ones) score q."""
    hidden: int = attrs.field(default=256, validator=v.ge(1))
    """Width of q's hidden layer."""
    epochs: int = attrs.field(default=200, validator=v.ge(1))
    """The most passes over the fitting sequences' frames."""
    patience: int = attrs.field(default=10, validator=v.ge(1))
    """Stop after this many epochs without a better likelihood on the held-out tenth; q keeps its
    best weights."""
    batch_size: int = attrs.field(default=512, validator=v.ge(1))
    """Frames per optimiser step."""
    lr: float = attrs.field(default=1e-3, validator=v.gt(0.0))
    """Adam's learning rate."""


class Predictor(nn.Module):
    """q(z_t | z_f): a diagonal Gaussian whose mean and log variance a one-hidden-layer network reads
    from z_f."""

    def __init__(self, z_f_dim: int, z_t_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_f_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_t_dim))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(f).chunk(2, dim=-1)
        return mean, MAX_LOG_VARIANCE * torch.tanh(raw / MAX_LOG_VARIANCE)


def log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``log N(z; mean, exp(logvar))`` summed over the last dimension."""
    return disentangle.gaussian_log_density(z, mean, logvar).sum(-1)


def pairs(f: np.ndarray, z: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """One (z_f, z_t) row per frame: ``(N * T, Zf)`` and ``(N * T, Zt)``."""
    t = z.shape[1]
    return (torch.from_numpy(np.repeat(f, t, axis=0)).float(),
            torch.from_numpy(z.reshape(-1, z.shape[-1])).float())


def fit_predictor(f: torch.Tensor, z: torch.Tensor, f_val: torch.Tensor, z_val: torch.Tensor,
                  config: DependenceProbeConfig, generator: torch.Generator) -> Predictor:
    """Fit q by likelihood on ``(f, z)`` frame pairs; keep the weights that do best on the held-out
    pairs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
        q = Predictor(f.shape[1], z.shape[1], config.hidden)
    opt = torch.optim.Adam(q.parameters(), lr=config.lr)
    best, best_nll, waited = copy.deepcopy(q.state_dict()), math.inf, 0
    for _ in range(config.epochs):
        order = torch.randperm(len(f), generator=generator)
        for start in range(0, len(f), config.batch_size):
            rows = order[start:start + config.batch_size]
            loss = -log_density(z[rows], *q(f[rows])).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            nll = float(-log_density(z_val, *q(f_val)).mean())
        if nll < best_nll - 1e-4:
            best, best_nll, waited = copy.deepcopy(q.state_dict()), nll, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    q.load_state_dict(best)
    return q.eval()


class DependenceProbe(disentangle.Metric):
    """How much z_f tells about z_1:T: a predictor q(z_t | z_f) fitted afresh on the frozen codes
    (posterior means) of the training split, scored on the test split. ``nats``: held-out
    ``log q(z_t | z_f) - log p(z_t)`` summed over the frames, an estimate of ``sum_t I(z_f; z_t)``
    in the units ``mi-club`` logs, about 0 when z_f tells nothing about z_t; ``nats_per_frame``;
    ``r2``: the share of z_t's variance that q's mean explains."""

    Config = DependenceProbeConfig

    def __init__(self, config: DependenceProbeConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        fit_codes = ev.encoded("train", limit=self.config.fit_sequences)
        test_codes = ev.encoded("test", limit=self.config.max_sequences)
        if len(fit_codes) < 10:
            raise disentangle.DisentangleError(
                f"dependence-probe needs at least 10 training sequences to fit q; the training split has "
                f"{len(fit_codes)}", hint="use a dataset with a larger training split")
        generator = ev.generator("dependence-probe")
        order = torch.randperm(len(fit_codes), generator=generator).numpy()
        n_val = max(1, len(order) // 10)
        val, fit = order[:n_val], order[n_val:]

        f_mean, f_std = fit_codes.f[fit].mean(0), fit_codes.f[fit].std(0) + 1e-8
        flat_z = fit_codes.z[fit].reshape(-1, fit_codes.z.shape[-1])
        z_mean, z_std = flat_z.mean(0), flat_z.std(0) + 1e-8

        def standard(codes, rows=slice(None)):
            return pairs((codes.f[rows] - f_mean) / f_std, (codes.z[rows] - z_mean) / z_std)

        with torch.enable_grad():
            q = fit_predictor(*standard(fit_codes, fit), *standard(fit_codes, val), self.config, generator)
        f_test, z_test = standard(test_codes)
        with torch.no_grad():
            mean, logvar = q(f_test)
            gain = log_density(z_test, mean, logvar) - log_density(z_test, torch.zeros_like(z_test),
                                                                   torch.zeros_like(z_test))
        scale = torch.from_numpy(z_std).float()
        explained = float((((z_test - mean) * scale) ** 2).sum())
        total = float(((z_test * scale) ** 2).sum())
        per_frame = float(gain.mean())
        return {"nats": per_frame * test_codes.z.shape[1], "nats_per_frame": per_frame,
                "r2": 1.0 - explained / total if total > 0 else 0.0}


@disentangle.hookimpl
def register_metrics(register):
    register("dependence-probe", DependenceProbe)
