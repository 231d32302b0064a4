"""``mi-club``: a learned estimate of the mutual information between z_f and each z_t (CLUB, an upper
bound where its predictor fits).

Not in S3VAE: an alternative to its MI penalty (``mi-mws``) for when that one saturates. The
minibatch estimate of ``mi-mws`` reaches its ceiling T (log N + log M) as soon as each code tells
the batch's sequences apart, dependent or not, and then has no gradient
(``benchmarks/mi_mws_regimes.py``). CLUB (Cheng et al., ICML 2020) measures dependence through a
predictor instead: a small network q(z_t | z_f), a diagonal Gaussian, learns to predict z_t from
z_f, and the penalty is how much better it predicts the matching z_t than another sequence's::

    L = sum_t [ mean_i log q(z_t(x_i) | z_f(x_i)) - mean_i mean_j log q(z_t(x_j) | z_f(x_i)) ]

(the full-batch form, vCLUB). When z_t does not depend on z_f, the best q ignores z_f and L is 0,
however sharp the posteriors; it does not saturate at log M.

Two objectives in one loss:

- **q** learns by maximum likelihood on the batch's codes, detached (it never sees the penalty);
- **the encoder** is pushed by L, computed with q's weights detached (L never trains q).

The returned value is L (what the logs show); q's likelihood enters through its gradient only.
q is shared across time steps and sees z_f only. The samples ``out.f`` and ``out.z`` are used.
Under torchrun the "other sequence" of the second term runs over the global batch
(``World.gather``).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import disentangle

__all__ = ["MutualInformationCLUB", "club_estimate"]


def club_estimate(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                  z_all: torch.Tensor | None = None) -> torch.Tensor:
    """The vCLUB estimate of ``sum_t I(z_f; z_t)`` (a scalar), averaged over the sequences.

    ``z`` ``(B, T, Zt)``: each sequence's z_t; ``mean``, ``logvar`` ``(B, 1 or T, Zt)``: q(z_t | z_f)
    for each sequence's z_f; ``z_all``: the z_t of every sequence the second term averages over
    (default ``z``). The second term is in closed form: for a Gaussian q,
    ``mean_j (z_j - mu_i)^2 = var_j z_j + (mean_j z_j - mu_i)^2``."""
    z_all = z if z_all is None else z_all
    inv_var = torch.exp(-logvar)
    z_bar = z_all.mean(0, keepdim=True)
    z_var = z_all.var(0, unbiased=False, keepdim=True)
    matched = (z - mean) ** 2
    others = z_var + (z_bar - mean) ** 2
    return (0.5 * (others - matched) * inv_var).sum(dim=(1, 2)).mean(0)


def gaussian_nll(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``-log N(z; mean, exp(logvar))`` summed over time and dimensions, averaged over sequences."""
    return (-disentangle.gaussian_log_density(z, mean, logvar)).sum(dim=(1, 2)).mean(0)


class MutualInformationCLUB(disentangle.Regularizer):
    """Penalise the mutual information between z_f and every z_t through a learned predictor
    q(z_t | z_f) (CLUB). Unlike ``mi-mws`` it is 0 for independent codes however sharp the
    posteriors, so it does not saturate. Not in the S3VAE paper."""

    @attrs.frozen
    class Config:
        hidden: int = attrs.field(default=256, validator=attrs.validators.ge(1))
        """Width of q's hidden layer."""
        max_log_variance: float = attrs.field(default=5.0, validator=attrs.validators.gt(0.0))
        """q's log variance is kept within ± this (a tanh), so that neither term runs away."""

    def __init__(self, config: "MutualInformationCLUB.Config", ctx: disentangle.BuildContext):
        super().__init__()
        if ctx.model is None:
            raise disentangle.DisentangleError("mi-club needs the model's sizes (ctx.model) to build q(z_t | z_f)")
        self.config = config
        self.world = ctx.world
        zf, zt = ctx.model.z_f_dim, ctx.model.z_t_dim
        self.hidden = nn.Linear(zf, config.hidden)
        self.head = nn.Linear(config.hidden, 2 * zt)

    def predict(self, f: torch.Tensor, detach_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z_t | z_f): mean and log variance ``(B, 1, Zt)`` for z_f ``(B, Zf)``. With
        ``detach_weights`` gradients reach ``f`` but not q."""
        layers = [(m.weight, m.bias) for m in (self.hidden, self.head)]
        if detach_weights:
            layers = [(w.detach(), b.detach()) for w, b in layers]
        (w1, b1), (w2, b2) = layers
        mean, raw = F.linear(torch.relu(F.linear(f, w1, b1)), w2, b2).chunk(2, dim=-1)
        bound = self.config.max_log_variance
        return mean[:, None], bound * torch.tanh(raw[:, None] / bound)

    def loss(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
             model: disentangle.S3VAE) -> torch.Tensor:
        f, z = out.f, out.z
        mean, logvar = self.predict(f, detach_weights=True)
        value = club_estimate(z, mean, logvar, z_all=self.world.gather(z))
        fit = gaussian_nll(z.detach(), *self.predict(f.detach()))
        return value + (fit - fit.detach())  # the value of L; the gradient of L and of q's fit

    def extra_repr(self) -> str:
        return f"hidden={self.config.hidden}, max_log_variance={self.config.max_log_variance:g}"


@disentangle.hookimpl
def register_regularizers(register):
    register("mi-club", MutualInformationCLUB)
