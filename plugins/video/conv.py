"""``conv``: DCGAN-style frame encoder and decoder for video, as in the DSVAE/S3VAE code.

Frames are ``(C, H, W)`` images with ``H == W`` a power of two >= 8 (taken from
``ctx.data.feature_shape``). Both networks work frame by frame:

- **encoder** (``[encoder] use = "conv"``): ``n = log2(H / 4)`` blocks
  ``Conv 4x4 stride 2 pad 1 -> norm -> LeakyReLU(0.2)`` halve the resolution down to 4x4, with
  widths ``channels[0], ..., channels[n-1]``; a final valid ``Conv 4x4`` maps the 4x4 map to
  ``out_dim`` features, followed by norm and ``tanh`` (or LeakyReLU). ``(B, T, C, H, W)`` ->
  ``(B, T, out_dim)``.
- **decoder** (``[decoder] use = "conv"``): the mirror image. A ``ConvTranspose 4x4`` (valid, i.e.
  a linear layer onto a 4x4 map) takes ``[z_f, z_t]`` to ``channels[n-1]`` maps of 4x4, then
  ``ConvTranspose 4x4 stride 2 pad 1 -> norm -> LeakyReLU(0.2)`` blocks double the resolution with
  widths ``channels[n-2], ..., channels[0]``, and a last ``ConvTranspose 4x4 stride 2 pad 1``
  outputs the ``C`` channels at full resolution (logits for ``bernoulli``, the mean for
  ``gaussian``).

``channels`` lists the block widths from the finest resolution to the coarsest. **Only the first
``n`` entries are used**, so the default ``(64, 128, 256, 512)`` serves 64x64 frames (4 blocks, the
paper's model) and 32x32 frames (3 blocks: 64, 128, 256) alike; a tuple shorter than ``n`` is an
error that names ``channels`` and the length needed.

Group norm uses ``gcd(width, 32)`` groups (32 groups when the width allows); on the encoder's final
1x1 feature map it normalises over all ``out_dim`` features (one group, i.e. a layer norm).
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import disentangle

__all__ = ["ConvDecoder", "ConvEncoder", "frame_geometry"]

Norm = Literal["batch", "group", "none"]
_LOG_2PI = math.log(2 * math.pi)


def _positive_ints(inst: object, attribute: attrs.Attribute, value: tuple) -> None:
    if len(value) == 0:
        raise ValueError(f"'{attribute.name}' must be a non-empty list of positive integers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"'{attribute.name}' must be a list of positive integers, got {list(value)!r}")


def _channels_field() -> tuple[int, ...]:
    return attrs.field(default=(64, 128, 256, 512), converter=tuple, validator=_positive_ints)


def frame_geometry(feature_shape: tuple[int, ...], channels: tuple[int, ...],
                   component: str) -> tuple[int, int, tuple[int, ...]]:
    """``(C, n_blocks, widths)`` for ``(C, H, W)`` frames, or a :class:`disentangle.DisentangleError`.

    ``n_blocks = log2(H / 4)`` stride-2 blocks; ``widths = channels[:n_blocks]``."""
    shape = tuple(feature_shape)
    if len(shape) != 3:
        raise disentangle.DisentangleError(
            f"{component} 'conv' needs image frames (C, H, W), but the dataset's frames have shape {shape}",
            hint="use an encoder/decoder made for this modality (e.g. an MLP for feature vectors)",
        )
    c, h, w = shape
    if h != w or h < 8 or h & (h - 1):
        raise disentangle.DisentangleError(
            f"{component} 'conv' needs square frames whose side is a power of two >= 8 "
            f"(8, 16, 32, 64, ...), but the dataset's frames are {h}x{w}",
            hint="resize the dataset's frames (e.g. to 64x64)",
        )
    n = int(math.log2(h // 4))
    if len(channels) < n:
        raise disentangle.DisentangleError(
            f"{component} 'conv': key 'channels' has {len(channels)} entries {list(channels)}, but "
            f"{h}x{w} frames need {n} stride-2 blocks ({h} -> 4), so 'channels' needs at least {n} entries",
            hint=f"e.g. channels = {list(_default_widths(n))}",
        )
    return c, n, tuple(channels[:n])


def _default_widths(n: int) -> tuple[int, ...]:
    return tuple(min(64 * 2**i, 512) for i in range(n))


def _norm(kind: str, width: int, *, one_by_one: bool = False) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(width)
    if kind == "group":
        if one_by_one:  # a 1x1 map: normalise over all features (one group), unless there is just one
            return nn.GroupNorm(1, width) if width > 1 else nn.Identity()
        return nn.GroupNorm(math.gcd(width, 32), width)
    return nn.Identity()


class ConvEncoder(disentangle.Encoder):
    """DCGAN frame encoder: ``(B, T, C, H, W)`` -> ``(B, T, out_dim)``, each frame on its own."""

    framewise = True

    @attrs.frozen
    class Config:
        channels: tuple[int, ...] = _channels_field()
        """Widths of the stride-2 blocks, finest resolution first (the first log2(H/4) are used)."""
        out_dim: int = attrs.field(default=128, validator=attrs.validators.ge(1))
        """Size of the per-frame feature vector."""
        norm: Norm = attrs.field(default="batch", validator=disentangle.validators.one_of("batch", "group", "none"))
        """Normalisation after each conv: batch norm (as in the paper), group norm, or none."""
        activation: Literal["tanh", "leaky_relu"] = attrs.field(
            default="tanh", validator=disentangle.validators.one_of("tanh", "leaky_relu"))
        """Non-linearity on the output features."""

    def __init__(self, config: "ConvEncoder.Config", ctx: disentangle.BuildContext):
        super().__init__()
        assert ctx.data is not None, "encoders get ctx.data"
        c, _, widths = frame_geometry(ctx.data.feature_shape, config.channels, "encoder")
        self.out_dim = int(config.out_dim)
        layers: list[nn.Module] = []
        prev = c
        for width in widths:
            layers += [nn.Conv2d(prev, width, 4, 2, 1, bias=config.norm == "none"),
                       _norm(config.norm, width), nn.LeakyReLU(0.2, inplace=True)]
            prev = width
        layers += [nn.Conv2d(prev, self.out_dim, 4, 1, 0, bias=config.norm == "none"),
                   _norm(config.norm, self.out_dim, one_by_one=True),
                   nn.Tanh() if config.activation == "tanh" else nn.LeakyReLU(0.2, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        h = self.net(x.reshape(b * t, *x.shape[2:]))
        return h.reshape(b, t, self.out_dim)


class ConvDecoder(disentangle.Decoder):
    """DCGAN frame decoder: ``(B, T, latent_dim)`` -> ``(B, T, C, H, W)`` logits or means."""

    @attrs.frozen
    class Config:
        channels: tuple[int, ...] = _channels_field()
        """Widths of the blocks, finest resolution first (mirrors the encoder's ``channels``)."""
        norm: Norm = attrs.field(default="batch", validator=disentangle.validators.one_of("batch", "group", "none"))
        """Normalisation after each transposed conv: batch norm, group norm, or none."""
        likelihood: Literal["bernoulli", "gaussian"] = attrs.field(
            default="bernoulli", validator=disentangle.validators.one_of("bernoulli", "gaussian"))
        """p(x_t | z): Bernoulli on pixels in [0, 1] (output = logits), or Gaussian (output = mean)."""
        sigma: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
        """Standard deviation of the Gaussian likelihood (ignored for bernoulli)."""

    def __init__(self, config: "ConvDecoder.Config", ctx: disentangle.BuildContext):
        super().__init__()
        assert ctx.data is not None and ctx.model is not None, "decoders get ctx.data and ctx.model"
        c, _, widths = frame_geometry(ctx.data.feature_shape, config.channels, "decoder")
        self.frame_shape = tuple(ctx.data.feature_shape)
        self.likelihood = config.likelihood
        self.sigma = float(config.sigma)
        bias = config.norm == "none"
        rev = list(reversed(widths))  # coarsest first
        layers: list[nn.Module] = [nn.ConvTranspose2d(ctx.model.latent_dim, rev[0], 4, 1, 0, bias=bias),
                                   _norm(config.norm, rev[0]), nn.LeakyReLU(0.2, inplace=True)]
        for prev, width in zip(rev, rev[1:]):
            layers += [nn.ConvTranspose2d(prev, width, 4, 2, 1, bias=bias),
                       _norm(config.norm, width), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(nn.ConvTranspose2d(rev[-1], c, 4, 2, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b, t, d = z.shape
        out = self.net(z.reshape(b * t, d, 1, 1))
        return out.reshape(b, t, *self.frame_shape)

    def nll(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            per = F.binary_cross_entropy_with_logits(output, x, reduction="none")
        else:
            per = 0.5 * ((x - output) / self.sigma) ** 2 + math.log(self.sigma) + 0.5 * _LOG_2PI
        return per.flatten(1).sum(-1)

    def mean(self, output: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(output) if self.likelihood == "bernoulli" else output


@disentangle.hookimpl
def register_encoders(register):
    register("conv", ConvEncoder)


@disentangle.hookimpl
def register_decoders(register):
    register("conv", ConvDecoder)
