"""Tiny components for fast core tests (registered via ``load_registry(extra=...)``)."""

from __future__ import annotations

import attrs
import torch
from attrs import validators as v

import disentangle
from disentangle import testing


@attrs.frozen
class ToyDataConfig:
    n_train: int = attrs.field(default=16, validator=v.gt(0))
    n_test: int = 8
    seq_len: int = 4
    size: int = 8
    seed: int = 0


class ToyDataset(testing.ToyData):
    Config = ToyDataConfig

    def __init__(self, config: ToyDataConfig, ctx: disentangle.BuildContext):
        spec_ctx = testing.tiny_context(ctx.cache_dir, feature_shape=(3, config.size, config.size),
                                        seq_len=config.seq_len)
        super().__init__(spec_ctx, n_train=config.n_train, n_test=config.n_test, seed=config.seed)

    def to_images(self, x):
        return x.clamp(0, 1)


@attrs.frozen
class TinyConfig:
    out_dim: int = 16


def tiny_encoder(config: TinyConfig, ctx):
    return testing.TinyEncoder(ctx, out_dim=config.out_dim)


@attrs.frozen
class NoConfig:
    pass


def tiny_decoder(config: NoConfig, ctx):
    return testing.TinyDecoder(ctx)


@attrs.frozen
class ScaleConfig:
    scale: float = 1.0
    explode_at_step: int = 0  # > 0: return NaN from that call on
    crash: bool = False  # raise an unexpected exception (a bug in plug-in code)
    per_item: bool = False  # return a per-sequence loss (B,) instead of a scalar (a plug-in bug)
    record_steps: bool = False  # take the optional ``step`` argument and record it in STEPS_SEEN


STEPS_SEEN: list[int] = []


class ZNorm(disentangle.Regularizer):
    """||z_t||² (a trivially checkable objective); can be told to return NaN."""

    Config = ScaleConfig

    def __init__(self, config: ScaleConfig, ctx):
        super().__init__()
        self.config = config
        self.calls = 0

    def loss(self, batch, out, model, **kwargs):
        self.calls += 1
        if self.config.record_steps:
            STEPS_SEEN.append(kwargs["step"])
        if self.config.crash:
            raise RuntimeError("shape mismatch in plug-in code")
        if self.config.per_item:
            return out.z.pow(2).flatten(1).mean(1)
        value = self.config.scale * out.z.pow(2).mean()
        if self.config.explode_at_step and self.calls >= self.config.explode_at_step:
            value = value * float("nan")
        return value


class ToyPlugin:
    @disentangle.hookimpl
    def register_datasets(self, register):
        register("toy", ToyDataset)

    @disentangle.hookimpl
    def register_encoders(self, register):
        register("tiny", tiny_encoder, config=TinyConfig)

    @disentangle.hookimpl
    def register_decoders(self, register):
        register("tiny", tiny_decoder, config=NoConfig)

    @disentangle.hookimpl
    def register_regularizers(self, register):
        register("z-norm", ZNorm)


def toy_registry(entry_points: bool = False):
    return disentangle.load_registry(entry_points=entry_points, extra=[("toy", ToyPlugin())])


TOY_RECIPE = """
description = "toy"
[data]
use = "toy"
n_train = 16
[model]
z_f_dim = 4
z_t_dim = 2
hidden_dim = 8
[model.encoder]
use = "tiny"
[model.decoder]
use = "tiny"
[[regularizers]]
use = "z-norm"
weight = 0.5
[train]
epochs = 3
batch_size = 4
lr = 0.001
checkpoint_every = 2
device = "cpu"
[eval]
num_images = 2
"""


class CommandPlugin:
    """Adds the command ``toy-hello`` to the CLI."""

    @disentangle.hookimpl
    def register_commands(self, cli):
        @cli.command("toy-hello")
        def hello(name: str = "world", loud: bool = False) -> None:
            """Say hello (a command added by a plug-in)."""
            text = f"hello {name} from a plug-in"
            print(text.upper() if loud else text)


class BrokenCommandPlugin:
    """Adds a command, then raises: none of its commands may stay."""

    @disentangle.hookimpl
    def register_commands(self, cli):
        @cli.command("half-added")
        def half() -> None:
            pass

        raise RuntimeError("commands broke")


class ShadowingCommandPlugin:
    """Tries to replace the core's ``run``."""

    @disentangle.hookimpl
    def register_commands(self, cli):
        @cli.command("run")
        def run() -> None:
            print("hijacked")
