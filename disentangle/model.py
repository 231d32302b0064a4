"""The S3VAE backbone (Zhu et al., CVPR 2020): modality-free, encoder and decoder are plug-ins.

Generative model:  z_f ~ N(0, I);  z_t | z_<t ~ N(mu_t, sigma_t^2) from an LSTM prior;
                   x_t ~ p(x_t | z_f, z_t) from the decoder.
Inference:         q(z_f | x_1:T) from a bidirectional LSTM over encoder features;
                   q(z_t | x_<=t) from a causal (unidirectional) LSTM over the same features.
Loss:              L_VAE = sum_t NLL(x_t) + KL(q(z_f) || p(z_f)) + sum_t KL(q(z_t | x_<=t) || p(z_t | z_<t)),
                   with analytic Gaussian KLs, averaged over the batch.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from disentangle.interfaces import Decoder, Encoder, ModelSpec

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Element-wise log N(z; mean, exp(logvar))."""
    return -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar))


def gaussian_kl(mean_q: torch.Tensor, logvar_q: torch.Tensor,
                mean_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """Element-wise KL(N(mean_q, var_q) || N(mean_p, var_p))."""
    return 0.5 * (logvar_p - logvar_q + (torch.exp(logvar_q) + (mean_q - mean_p) ** 2)
                  * torch.exp(-logvar_p) - 1.0)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)


@dataclasses.dataclass
class S3VAEOutput:
    """Everything one forward pass computes; objectives read what they need from it."""

    features: torch.Tensor  # (B, T, D) encoder features
    f_mean: torch.Tensor  # (B, Zf)
    f_logvar: torch.Tensor
    f: torch.Tensor  # (B, Zf) sample of q(z_f | x_1:T)
    z_mean: torch.Tensor  # (B, T, Zt)
    z_logvar: torch.Tensor
    z: torch.Tensor  # (B, T, Zt) samples of q(z_t | x_<=t)
    prior_mean: torch.Tensor  # (B, T, Zt) p(z_t | z_<t) evaluated on the posterior samples
    prior_logvar: torch.Tensor
    output: torch.Tensor  # decoder output (parameters of p(x | z))
    recon_nll: torch.Tensor  # (B,) summed over time and features
    kl_f: torch.Tensor  # (B,)
    kl_z: torch.Tensor  # (B,) summed over time

    @property
    def vae_loss(self) -> torch.Tensor:
        """L_VAE averaged over the batch (the negative ELBO)."""
        return (self.recon_nll + self.kl_f + self.kl_z).mean()


class S3VAE(nn.Module):
    """Sequential VAE with a static code z_f and a dynamic code z_1:T."""

    def __init__(self, encoder: Encoder, decoder: Decoder, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.encoder = encoder
        self.decoder = decoder
        d, h = int(encoder.out_dim), spec.hidden_dim
        zf, zt = spec.z_f_dim, spec.z_t_dim
        self.static_rnn = nn.LSTM(d, h, batch_first=True, bidirectional=True)
        self.static_head = nn.Linear(2 * h, 2 * zf)
        self.dynamic_rnn = nn.LSTM(d, h, batch_first=True)
        self.dynamic_head = nn.Linear(h, 2 * zt)
        self.prior_rnn = nn.LSTM(zt, h, batch_first=True)
        self.prior_head = nn.Linear(h, 2 * zt)

    # ----- inference -------------------------------------------------------------------------
    def static_posterior(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z_f | x_1:T): mean and log-variance ``(B, Zf)`` from the whole feature sequence."""
        _, (h_n, _) = self.static_rnn(features)
        summary = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last forward and last backward states
        mean, logvar = self.static_head(summary).chunk(2, dim=-1)
        return mean, logvar

    def dynamic_posterior(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z_t | x_<=t): mean and log-variance ``(B, T, Zt)`` from a causal LSTM."""
        out, _ = self.dynamic_rnn(features)
        mean, logvar = self.dynamic_head(out).chunk(2, dim=-1)
        return mean, logvar

    def prior(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(z_t | z_<t) for every t, teacher-forced on ``z`` ``(B, T, Zt)``."""
        z_prev = torch.cat([torch.zeros_like(z[:, :1]), z[:, :-1]], dim=1)
        out, _ = self.prior_rnn(z_prev)
        mean, logvar = self.prior_head(out).chunk(2, dim=-1)
        return mean, logvar

    def forward(self, x: torch.Tensor) -> S3VAEOutput:
        features = self.encoder(x)
        f_mean, f_logvar = self.static_posterior(features)
        z_mean, z_logvar = self.dynamic_posterior(features)
        f = reparameterize(f_mean, f_logvar)
        z = reparameterize(z_mean, z_logvar)
        p_mean, p_logvar = self.prior(z)
        output = self.decode(f, z)
        recon = self.decoder.nll(output, x)
        kl_f = gaussian_kl(f_mean, f_logvar, torch.zeros_like(f_mean), torch.zeros_like(f_logvar)).sum(-1)
        kl_z = gaussian_kl(z_mean, z_logvar, p_mean, p_logvar).sum(dim=(1, 2))
        return S3VAEOutput(features, f_mean, f_logvar, f, z_mean, z_logvar, z, p_mean, p_logvar,
                           output, recon, kl_f, kl_z)

    def posteriors(self, x: torch.Tensor) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                   tuple[torch.Tensor, torch.Tensor]]:
        """``((mean, log-variance) of q(z_f | x_1:T), (mean, log-variance) of q(z_t | x_<=t))``."""
        features = self.encoder(x)
        return self.static_posterior(features), self.dynamic_posterior(features)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, sample: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_f (B, Zf), z_1:T (B, T, Zt))``: posterior means, or samples with ``sample=True``."""
        (f_mean, f_logvar), (z_mean, z_logvar) = self.posteriors(x)
        if sample:
            return reparameterize(f_mean, f_logvar), reparameterize(z_mean, z_logvar)
        return f_mean, z_mean

    # ----- generation --------------------------------------------------------------------------
    def decode(self, f: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decoder output for z_f ``(B, Zf)`` and z_1:T ``(B, T, Zt)``."""
        latent = torch.cat([f.unsqueeze(1).expand(-1, z.shape[1], -1), z], dim=-1)
        return self.decoder(latent)

    @torch.no_grad()
    def sample_f(self, n: int) -> torch.Tensor:
        """z_f ~ N(0, I)."""
        return torch.randn(n, self.spec.z_f_dim, device=self._device())

    @torch.no_grad()
    def sample_z(self, n: int, steps: int) -> torch.Tensor:
        """z_1:T from the LSTM prior, one step at a time."""
        zt = self.spec.z_t_dim
        z_prev = torch.zeros(n, 1, zt, device=self._device())
        state = None
        out = []
        for _ in range(steps):
            h, state = self.prior_rnn(z_prev, state)
            mean, logvar = self.prior_head(h).chunk(2, dim=-1)
            z_prev = reparameterize(mean, logvar)
            out.append(z_prev)
        return torch.cat(out, dim=1)

    @torch.no_grad()
    def generate(self, n: int, steps: int, f: torch.Tensor | None = None,
                 z: torch.Tensor | None = None) -> torch.Tensor:
        """Data-space sequences ``(n, steps, *F)``; a factor not given is sampled from its prior."""
        f = self.sample_f(n) if f is None else f
        z = self.sample_z(n, steps) if z is None else z
        return self.decoder.mean(self.decode(f, z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        f, z = self.encode(x)
        return self.decoder.mean(self.decode(f, z))

    @torch.no_grad()
    def swap(self, x_static: torch.Tensor, x_dynamic: torch.Tensor) -> torch.Tensor:
        """Decode z_f of ``x_static`` with z_1:T of ``x_dynamic`` (same batch size)."""
        f, _ = self.encode(x_static)
        _, z = self.encode(x_dynamic)
        return self.decoder.mean(self.decode(f, z))

    def _device(self) -> torch.device:
        return next(self.parameters()).device
