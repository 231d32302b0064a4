"""``dependence-probe``: how much z_f tells about z_1:T, measured by a predictor trained afresh on the
frozen codes of the trained model.

A regularizer that penalises the dependence between z_f and z_t (``mi-mws``, ``mi-club``) reports
its own estimate, and ``mi-club``'s estimate comes from a predictor the encoder was trained against:
the encoder may have learned to dodge that predictor rather than to drop the dependence. This
metric is the referee. On the posterior means of the trained model it fits a new predictor
q(z_t | z_f), a diagonal Gaussian shared by the frames: a small network for the mean, fitted by
squared error with early stopping on a tenth of the fitting sequences, and one variance per z_t
dimension, that tenth's squared error. It scores q on other sequences against the marginal of z_t
(a diagonal Gaussian with the fitting sequences' mean and variance):

- ``nats``: held-out ``log q(z_t | z_f) - log p(z_t)``, summed over the frames and averaged over
  the scoring sequences; an estimate of ``sum_t I(z_f; z_t)`` in nats, as ``mi-club`` logs, but
  by another estimator (``mi-club``'s vCLUB contrasts each z_t with the batch's other sequences),
  so its level is not ``mi-club``'s. It is about 0 when z_f tells nothing about z_t and can go a
  little below 0 when q fits nothing;
- ``nats_per_frame``: the same, per frame;
- ``r2``: the share of z_t's variance (all dimensions pooled, in the model's units) that q's mean
  explains on the scoring sequences.

``fit_on = "train"`` (the default) fits q on the training split and scores it on the test split.
Where the test split holds other speakers or subjects (TIMIT), what q learns about the training
ones does not carry over and the figures fall to 0 or below whatever the model; ``fit_on = "test"``
then fits on half of the test split and scores on the other half, halved by blocks of consecutive
sequences so that the overlapping windows of one recording stay mostly on one side. Figures are
comparable between runs with the same settings, not across them.

Both codes are standardised with the fitting sequences' statistics first, so the figures do not
depend on the scale of either code. Posterior means are used by default, as by ``latent-probe``:
a model cannot lower these figures by widening its posteriors. ``codes = "sample"`` draws one code
from each posterior instead, what the decoder and the regularizers see in training: the noise
of a wide posterior then hides part of the dependence, as it does from ``mi-club``'s own q.
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

@attrs.frozen
class DependenceProbeConfig:
    fit_on: str = attrs.field(default="train", validator=disentangle.validators.one_of("train", "test"))
    """``"train"``: fit q on the training split (its first ``max_sequences``) and score it on the test
    split. ``"test"``: fit q on half of the test split and score it on the other half, for data
    whose test split holds other speakers or subjects than the training split, where a q fitted on
    the training ones would not carry over."""
    codes: str = attrs.field(default="mean", validator=disentangle.validators.one_of("mean", "sample"))
    """``"mean"``: the posterior means (a model cannot lower the figures by widening its
    posteriors). ``"sample"``: one draw from each sequence's posterior, the codes the decoder and
    the regularizers see in training (``mi-club``'s own estimate reads these)."""
    max_sequences: int = attrs.field(default=2000, validator=v.ge(3))
    """How many sequences of each split to encode (the first ones)."""
    block: int = attrs.field(default=32, validator=v.ge(1))
    """With ``fit_on = "test"``, the test split is halved by blocks of this many consecutive
    sequences, so that the (possibly overlapping) windows of one recording fall mostly on one side."""
    hidden: int = attrs.field(default=256, validator=v.ge(1))
    """Width of q's hidden layer."""
    epochs: int = attrs.field(default=200, validator=v.ge(1))
    """The most passes over the fitting sequences' frames."""
    patience: int = attrs.field(default=10, validator=v.ge(1))
    """Stop after this many epochs without a smaller squared error on the held-out tenth; q keeps its
    best weights."""
    batch_size: int = attrs.field(default=512, validator=v.ge(1))
    """Frames per optimiser step."""
    lr: float = attrs.field(default=1e-3, validator=v.gt(0.0))
    """Adam's learning rate."""


class Predictor(nn.Module):
    """q(z_t | z_f): a diagonal Gaussian whose mean a one-hidden-layer network reads from z_f, with one
    variance per dimension of z_t (the held-out squared error of the mean). A variance that does not
    follow z_f cannot be overconfident on codes unlike the fitted ones."""

    def __init__(self, z_f_dim: int, z_t_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_f_dim, hidden), nn.ReLU(), nn.Linear(hidden, z_t_dim))
        self.register_buffer("logvar", torch.zeros(z_t_dim))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(f), self.logvar.expand(len(f), -1)


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
    """Fit q's mean by squared error on ``(f, z)`` frame pairs, keeping the weights that do best on
    the held-out pairs, and set its variances to the held-out squared error of each dimension."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**31 - 1, (), generator=generator)))
        q = Predictor(f.shape[1], z.shape[1], config.hidden)
    opt = torch.optim.Adam(q.net.parameters(), lr=config.lr)
    best, best_err, waited = copy.deepcopy(q.state_dict()), math.inf, 0
    for _ in range(config.epochs):
        order = torch.randperm(len(f), generator=generator)
        for start in range(0, len(f), config.batch_size):
            rows = order[start:start + config.batch_size]
            loss = ((q.net(f[rows]) - z[rows]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            err = float(((q.net(f_val) - z_val) ** 2).mean())
        if err < best_err - 1e-5:
            best, best_err, waited = copy.deepcopy(q.state_dict()), err, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    q.load_state_dict(best)
    with torch.no_grad():
        q.logvar.copy_(torch.log(((q.net(f_val) - z_val) ** 2).mean(0) + 1e-8))
    return q.eval()


class DependenceProbe(disentangle.Metric):
    """How much z_f tells about z_1:T: a predictor q(z_t | z_f) fitted afresh on the frozen codes
    (posterior means, or one posterior draw with ``codes = "sample"``) of the training split (or
    half the test split), scored on the test split (the other half). ``nats``: held-out
    ``log q(z_t | z_f) - log p(z_t)`` summed over the frames, an estimate of ``sum_t I(z_f; z_t)``,
    about 0 when z_f tells nothing about z_t (in nats, as ``mi-club`` logs, but by another
    estimator: compare it between runs, not with ``mi-club``'s level); ``nats_per_frame``;
    ``r2``: the share of z_t's variance that q's mean explains."""

    Config = DependenceProbeConfig

    def __init__(self, config: DependenceProbeConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        generator = ev.generator("dependence-probe")
        test = ev.encoded("test", limit=self.config.max_sequences)
        scored = self.codes(test, generator)
        if self.config.fit_on == "train":
            fitting = self.codes(ev.encoded("train", limit=self.config.max_sequences), generator)
            order = torch.randperm(len(fitting[0]), generator=generator).numpy()
            n_val = len(order) // 10
            fit, val, score = order[n_val:], order[:n_val], np.arange(len(test))
        else:
            fitting = scored
            score, fit, val = self.halves(len(test), generator)
        (f, z), (f_val, z_val), (f_score, z_score) = (
            (codes[0][rows], codes[1][rows]) for codes, rows in ((fitting, fit), (fitting, val), (scored, score)))
        if len(f) < 2 or len(f_val) < 1 or len(f_score) < 1:
            raise disentangle.DisentangleError(
                f"dependence-probe has too few sequences to fit and score q (fit_on = {self.config.fit_on!r}: "
                f"{len(f)} to fit, {len(f_val)} to stop on, {len(f_score)} to score)",
                hint="use larger splits, or a smaller block")

        f_mean, f_std = f.mean(0), f.std(0) + 1e-8
        flat_z = z.reshape(-1, z.shape[-1])
        z_mean, z_std = flat_z.mean(0), flat_z.std(0) + 1e-8

        def standard(f, z):
            return pairs((f - f_mean) / f_std, (z - z_mean) / z_std)

        with torch.enable_grad():
            q = fit_predictor(*standard(f, z), *standard(f_val, z_val), self.config, generator)
        f_test, z_test = standard(f_score, z_score)
        with torch.no_grad():
            mean, logvar = q(f_test)
            gain = log_density(z_test, mean, logvar) - log_density(z_test, torch.zeros_like(z_test),
                                                                   torch.zeros_like(z_test))
        scale = torch.from_numpy(z_std).float()
        explained = float((((z_test - mean) * scale) ** 2).sum())
        total = float(((z_test * scale) ** 2).sum())
        per_frame = float(gain.mean())
        return {"nats": per_frame * z_score.shape[1], "nats_per_frame": per_frame,
                "r2": 1.0 - explained / total if total > 0 else 0.0}

    def codes(self, enc: disentangle.Encoded, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(z_f, z_1:T)`` of the encoded sequences: their posterior means, or one draw from each
        posterior with ``codes = "sample"``."""
        return enc.sample(generator) if self.config.codes == "sample" else (enc.f, enc.z)

    def halves(self, n: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows of the test split to score q on, to fit it on and to stop on: blocks of ``block``
        consecutive sequences, half of them to score, a tenth of the rest to stop on."""
        block = self.config.block
        n_blocks = -(-n // block)
        order = torch.randperm(n_blocks, generator=generator).numpy()
        n_score, n_val = n_blocks // 2, max(1, (n_blocks - n_blocks // 2) // 10)
        parts = (order[:n_score], order[n_score:n_blocks - n_val], order[n_blocks - n_val:])
        return tuple(np.array([i for b in sorted(part) for i in range(b * block, min((b + 1) * block, n))],
                              dtype=int) for part in parts)


@disentangle.hookimpl
def register_metrics(register):
    register("dependence-probe", DependenceProbe)
