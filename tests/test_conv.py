"""The ``conv`` encoder/decoder plug-in."""

from __future__ import annotations

import attrs
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import conv
from disentangle_plugins.video.conv import ConvDecoder, ConvEncoder

TINY = {32: (8, 16, 16), 64: (8, 16, 16, 16)}


def _ctx(tmp_path, size=32, channels=1, **kw):
    kw.setdefault("seq_len", 3)
    return testing.tiny_context(tmp_path, feature_shape=(channels, size, size), **kw)


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_encoder_contract(tmp_path, size, norm):
    ctx = _ctx(tmp_path, size, channels=3)
    enc = ConvEncoder(ConvEncoder.Config(channels=TINY[size], out_dim=12, norm=norm), ctx)
    assert enc.framewise is True and enc.out_dim == 12
    testing.check_encoder(enc, ctx)


def test_encoder_leaky_relu_output(tmp_path):
    ctx = _ctx(tmp_path, 32)
    enc = ConvEncoder(ConvEncoder.Config(channels=TINY[32], out_dim=6, activation="leaky_relu"), ctx)
    testing.check_encoder(enc, ctx)
    assert isinstance(enc.net[-1], torch.nn.LeakyReLU)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_decoder_contract(tmp_path, size, likelihood):
    ctx = _ctx(tmp_path, size, channels=3)
    dec = ConvDecoder(ConvDecoder.Config(channels=TINY[size], likelihood=likelihood, sigma=0.5), ctx)
    testing.check_decoder(dec, ctx)
    z = torch.randn(2, 3, ctx.model.latent_dim)
    assert dec(z).shape == (2, 3, 3, size, size)


def test_decoder_group_norm(tmp_path):
    ctx = _ctx(tmp_path, 32)
    testing.check_decoder(ConvDecoder(ConvDecoder.Config(channels=TINY[32], norm="group"), ctx), ctx)


def test_nll_and_mean_known_values(tmp_path):
    ctx = _ctx(tmp_path, 8, seq_len=2)
    g = torch.Generator().manual_seed(1)
    out = torch.randn(3, 2, 1, 8, 8, generator=g)
    x = torch.rand(3, 2, 1, 8, 8, generator=g)

    bern = ConvDecoder(ConvDecoder.Config(channels=(4,)), ctx)
    p = torch.sigmoid(out)
    want = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(-1)
    torch.testing.assert_close(bern.nll(out, x), want, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(bern.mean(out), p)

    sigma = 0.3
    gauss = ConvDecoder(ConvDecoder.Config(channels=(4,), likelihood="gaussian", sigma=sigma), ctx)
    want = -torch.distributions.Normal(out, sigma).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(gauss.nll(out, x), want, rtol=1e-5, atol=1e-4)
    assert gauss.mean(out) is out


def test_in_s3vae_end_to_end(tmp_path):
    ctx = _ctx(tmp_path, 16, channels=1)
    enc = ConvEncoder(ConvEncoder.Config(channels=(4, 8), out_dim=8), ctx)
    dec = ConvDecoder(ConvDecoder.Config(channels=(4, 8)), ctx)
    model = testing.tiny_model(ctx, enc, dec)
    out = model(testing.random_batch(ctx, 2)["x"])
    assert out.recon_nll.shape == (2,)
    out.vae_loss.backward()
    model.eval()
    assert model.generate(2, 5).shape == (2, 5, 1, 16, 16)


def test_paper_size_model_builds_at_64(tmp_path):
    """The paper's 64x64 model: 4 blocks 64..512, 128 encoder features (default config)."""
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 64, 64), seq_len=8,
                               z_f_dim=256, z_t_dim=32, hidden_dim=256)
    enc_cfg, dec_cfg = ConvEncoder.Config(), ConvDecoder.Config()
    assert enc_cfg.channels == dec_cfg.channels == (64, 128, 256, 512) and enc_cfg.out_dim == 128
    enc, dec = ConvEncoder(enc_cfg, ctx), ConvDecoder(dec_cfg, ctx)
    # conv weights (no bias before batch norm) + batch-norm scale/shift
    want_enc = (16 * (3 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 128)
                + 2 * (64 + 128 + 256 + 512 + 128))
    want_dec = (16 * (288 * 512 + 512 * 256 + 256 * 128 + 128 * 64 + 64 * 3) + 3
                + 2 * (512 + 256 + 128 + 64))
    assert _n_params(enc) == want_enc
    assert _n_params(dec) == want_dec
    assert 1e6 < _n_params(enc) < 1e7 and 1e6 < _n_params(dec) < 1e7
    with torch.no_grad():
        x = torch.rand(1, 2, 3, 64, 64)
        assert enc(x).shape == (1, 2, 128)
        assert dec(torch.randn(1, 2, 288)).shape == (1, 2, 3, 64, 64)


def test_default_channels_serve_32x32_too(tmp_path):
    """Only the first log2(H/4) widths are used: 32x32 frames take 64, 128, 256."""
    ctx = _ctx(tmp_path, 32)
    enc = ConvEncoder(ConvEncoder.Config(), ctx)
    convs = [m for m in enc.net if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 128]


@pytest.mark.parametrize("shape, words", [
    ((3, 48, 48), ["power of two", "48x48"]),
    ((3, 64, 32), ["square", "64x32"]),
    ((3, 4, 4), ["power of two", "4x4"]),
    ((80,), ["(C, H, W)", "(80,)"]),
])
@pytest.mark.parametrize("cls", [ConvEncoder, ConvDecoder])
def test_wrong_resolution_is_a_clear_error(tmp_path, shape, words, cls):
    ctx = testing.tiny_context(tmp_path, feature_shape=shape)
    with pytest.raises(disentangle.DisentangleError) as info:
        cls(cls.Config(channels=(4, 4, 4, 4)), ctx)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("cls", [ConvEncoder, ConvDecoder])
def test_too_few_channels_names_the_key_and_length(tmp_path, cls):
    ctx = _ctx(tmp_path, 64)
    with pytest.raises(disentangle.DisentangleError) as info:
        cls(cls.Config(channels=(8, 16, 16)), ctx)
    msg = str(info.value)
    assert "'channels'" in msg and "64x64" in msg and "at least 4" in msg


@pytest.mark.parametrize("config", [
    ConvEncoder.Config(),
    ConvEncoder.Config(channels=(8, 16), out_dim=5, norm="group", activation="leaky_relu"),
    ConvDecoder.Config(),
    ConvDecoder.Config(channels=(8, 16, 32), norm="none", likelihood="gaussian", sigma=0.1),
])
def test_config_roundtrip(config):
    testing.check_config_roundtrip(config)


@pytest.mark.parametrize("cls, bad", [
    (ConvEncoder.Config, {"channels": ()}),
    (ConvEncoder.Config, {"channels": (8, 0)}),
    (ConvEncoder.Config, {"out_dim": 0}),
    (ConvEncoder.Config, {"norm": "layer"}),
    (ConvDecoder.Config, {"likelihood": "poisson"}),
    (ConvDecoder.Config, {"sigma": 0.0}),
])
def test_config_validation(cls, bad):
    with pytest.raises((ValueError, TypeError)):
        cls(**bad)


def test_registered_as_encoder_and_decoder():
    reg = disentangle.load_registry(entry_points=False, extra=[("conv", conv)])
    info = reg.plugins[0]
    assert info.status == "ok", info.error
    assert reg.get("encoder", "conv").factory is ConvEncoder
    assert reg.get("decoder", "conv").factory is ConvDecoder
    assert attrs.has(reg.get("encoder", "conv").config)
