"""``mel-fbank``: encoder and decoder for log-mel filterbank frames ``(80,)`` (the speech datasets' data space).

The waveform -> filterbank transform is done once by the dataset (:mod:`disentangle_plugins.speech.corpus`:
16 kHz, 25 ms / 10 ms, 80-d log-mel, normalised per bin with the train split's statistics), so these
networks see normalised 80-d frames:

- **encoder**: a 1-D convolution over time with ``kernel`` frames (1: each frame on its own, an MLP)
  followed by ``layers - 1`` frame-wise layers of width ``hidden``, LeakyReLU(0.2) between, ``tanh`` on
  the ``out_dim`` output features. ``(B, T, 80)`` -> ``(B, T, out_dim)``.
- **decoder**: the mirror image from ``[z_f, z_t]``; p(x_t | z) is a Gaussian with mean = output and
  a fixed ``sigma`` (in units of the normalised frames, i.e. of each bin's train-split std).
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import nn

import disentangle

_LOG_2PI = math.log(2 * math.pi)


def _frames(ctx: disentangle.BuildContext, component: str) -> int:
    assert ctx.data is not None
    shape = tuple(ctx.data.feature_shape)
    if len(shape) != 1:
        raise disentangle.DisentangleError(
            f"{component} 'mel-fbank' needs feature-vector frames (e.g. (80,) filterbanks), but the "
            f"dataset's frames have shape {shape}", hint="use it with a speech dataset (fsdd, timit)")
    return shape[0]


def _stack(n_in: int, hidden: int, n_out: int, layers: int, kernel: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    width = n_in
    for i in range(layers):
        last = i == layers - 1
        out = n_out if last else hidden
        k = kernel if i == 0 else 1
        mods.append(nn.Conv1d(width, out, k, padding=k // 2, padding_mode="replicate"))
        if not last:
            mods.append(nn.LeakyReLU(0.2))
        width = out
    return nn.Sequential(*mods)


def _check_kernel(inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1 or value % 2 == 0:
        raise ValueError(f"'{attribute.name}' must be an odd number >= 1 (frames), got {value}")


@attrs.frozen
class MelFbankEncoderConfig:
    hidden: int = attrs.field(default=256, validator=disentangle.validators.positive_int)
    """Width of the hidden layers."""
    layers: int = attrs.field(default=3, validator=disentangle.validators.positive_int)
    """Number of layers (the first sees ``kernel`` frames, the others one)."""
    kernel: int = attrs.field(default=1, validator=_check_kernel)
    """Frames seen by the first layer (odd; 1 = frame by frame)."""
    out_dim: int = attrs.field(default=256, validator=disentangle.validators.positive_int)
    """Size of the per-frame feature vector."""


class MelFbankEncoder(disentangle.Encoder):
    """``(B, T, 80)`` -> ``(B, T, out_dim)`` (see the module docstring)."""

    Config = MelFbankEncoderConfig

    def __init__(self, config: MelFbankEncoderConfig, ctx: disentangle.BuildContext):
        super().__init__()
        bins = _frames(ctx, "encoder")
        self.out_dim = int(config.out_dim)
        self.framewise = config.kernel == 1
        self.net = _stack(bins, config.hidden, self.out_dim, config.layers, config.kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x.transpose(1, 2))).transpose(1, 2)


@attrs.frozen
class MelFbankDecoderConfig:
    hidden: int = attrs.field(default=256, validator=disentangle.validators.positive_int)
    """Width of the hidden layers."""
    layers: int = attrs.field(default=3, validator=disentangle.validators.positive_int)
    """Number of layers (the first sees ``kernel`` latent steps, the others one)."""
    kernel: int = attrs.field(default=1, validator=_check_kernel)
    """Time steps of ``[z_f, z_t]`` seen by the first layer (odd; 1 = frame by frame)."""
    sigma: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    """Standard deviation of the Gaussian likelihood, in normalised units."""


class MelFbankDecoder(disentangle.Decoder):
    """``(B, T, latent_dim)`` -> Gaussian means ``(B, T, 80)`` (see the module docstring)."""

    Config = MelFbankDecoderConfig

    def __init__(self, config: MelFbankDecoderConfig, ctx: disentangle.BuildContext):
        super().__init__()
        assert ctx.model is not None
        bins = _frames(ctx, "decoder")
        self.sigma = float(config.sigma)
        self.net = _stack(ctx.model.latent_dim, config.hidden, bins, config.layers, config.kernel)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.transpose(1, 2)).transpose(1, 2)

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        per = 0.5 * ((x - output) / self.sigma) ** 2 + math.log(self.sigma) + 0.5 * _LOG_2PI
        return per.flatten(1).sum(-1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return output


@disentangle.hookimpl
def register_encoders(register):
    register("mel-fbank", MelFbankEncoder)


@disentangle.hookimpl
def register_decoders(register):
    register("mel-fbank", MelFbankDecoder)
