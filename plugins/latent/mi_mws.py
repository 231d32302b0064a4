"""``mi-mws``: the mutual-information penalty of S3VAE between z_f and each z_t.

    L_MI = sum_t I(z_f; z_t) = sum_t E_q[ log q(z_f, z_t) - log q(z_f) - log q(z_t) ]

where q(.) are *aggregate* posteriors (marginalised over the data), estimated on the batch with
minibatch weighted sampling (Chen et al. 2018, beta-TCVAE), as S3VAE does::

    log q(z(x_i)) ~= logsumexp_j log q(z(x_i) | x_j) - log(N * M)

with N the training-set size (``ctx.dataset_size``) and M the actual batch size: under torchrun the
global batch, whose posteriors q(. | x_j) every process gathers (``World.gather``, with gradients)
while its samples z(x_i) stay its own, so that the processes' mean is the one-process estimate. The joint density
factorises given x_j: ``log q(z_f, z_t | x_j) = log q(z_f | x_j) + log q(z_t | x_j)``, each a
diagonal Gaussian summed over its dimensions. The samples z(x_i) are the posterior samples
``out.f`` and ``out.z``; the estimate is averaged over i and summed over t.

Note on N: every one of the three terms subtracts log(N M), so the estimate equals the in-batch
estimate (weights 1/M) plus the constant ``T * log N``. N therefore shifts the value of the loss
(reported in logs) but not its gradient. In the small-variance limit the in-batch part is the
empirical mutual information of the batch's codes: 0 when the codes repeat across sequences in
every pairing (z_f one of k values, z_t one of k, all k*k pairs present), and log M per step when
each code tells the batch's sequences apart, whether z_f and z_t are dependent or not. Continuous
codes, every sequence its own value, are at log M even when independent; the estimate then falls
below it only as the posteriors widen until they overlap (``benchmarks/mi_mws_regimes.py``: at a
batch of 64 with z_f of 256 and z_t of 32 dimensions, still 0.99 of log M with posteriors as wide
as the codes' own spread, 0.37 at three times as wide). ``mi-club`` measures the dependence
through a learned predictor instead and does not saturate.
"""

from __future__ import annotations

import math

import attrs
import torch

import disentangle

__all__ = ["MutualInformationMWS", "mws_mutual_information"]


def mws_mutual_information(f: torch.Tensor, f_mean: torch.Tensor, f_logvar: torch.Tensor,
                           z: torch.Tensor, z_mean: torch.Tensor, z_logvar: torch.Tensor,
                           dataset_size: int) -> torch.Tensor:
    """The MWS estimate of ``sum_t I(z_f; z_t)`` (a scalar), averaged over the samples.

    Samples ``f`` ``(S, Zf)`` and ``z`` ``(S, T, Zt)``; the posteriors they are scored under,
    ``f_mean``, ``f_logvar`` ``(M, Zf)`` and ``z_mean``, ``z_logvar`` ``(M, T, Zt)`` (M = S in one
    process; the global batch under torchrun); ``dataset_size``: N."""
    m = f_mean.shape[0]
    log_nm = math.log(dataset_size * m)
    # [i, j]: log q(z_f(x_i) | x_j), summed over dims
    log_qf = disentangle.gaussian_log_density(f[:, None], f_mean[None], f_logvar[None]).sum(-1)
    # [i, j, t]: log q(z_t(x_i) | x_j), summed over dims
    log_qz = disentangle.gaussian_log_density(z[:, None], z_mean[None], z_logvar[None]).sum(-1)
    joint = torch.logsumexp(log_qf[:, :, None] + log_qz, dim=1) - log_nm  # (M, T)
    marg_f = torch.logsumexp(log_qf, dim=1) - log_nm  # (M,)
    marg_z = torch.logsumexp(log_qz, dim=1) - log_nm  # (M, T)
    return (joint - marg_f[:, None] - marg_z).sum(1).mean(0)


class MutualInformationMWS(disentangle.Regularizer):
    """Penalise the mutual information between z_f and every z_t (MWS estimate).

    Its logged value is at most T * (log N + log M) (T frames, N training sequences, a batch of
    M). It sits there when each sample's posterior is far from every other sequence's, and there
    its gradient is zero: a logged value at that ceiling means the penalty pushes nothing."""

    @attrs.frozen
    class Config:
        """No parameters: N comes from the training set, M from each batch."""

    def __init__(self, config: "MutualInformationMWS.Config", ctx: disentangle.BuildContext):
        super().__init__()
        if not ctx.dataset_size or ctx.dataset_size < 1:
            raise disentangle.DisentangleError(
                "mi-mws needs the training-set size (ctx.dataset_size) for its MWS estimate, got "
                f"{ctx.dataset_size!r}")
        self.dataset_size = int(ctx.dataset_size)
        self.world = ctx.world

    def loss(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
             model: disentangle.S3VAE) -> torch.Tensor:
        g = self.world.gather  # the global batch's posteriors under torchrun; as is in one process
        return mws_mutual_information(out.f, g(out.f_mean), g(out.f_logvar), out.z, g(out.z_mean), g(out.z_logvar),
                                      self.dataset_size)


@disentangle.hookimpl
def register_regularizers(register):
    register("mi-mws", MutualInformationMWS)
