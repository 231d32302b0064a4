"""latent-probe and reconstruction metrics."""

import torch

from disentangle import EvalContext, testing
from disentangle_plugins.evaluation import latent_metrics as lm


def setup(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 8, 8), seq_len=4)
    torch.manual_seed(0)
    model = testing.tiny_model(ctx).eval()
    data = testing.ToyData(ctx, n_train=8, n_test=40)
    return ctx, model, data


def test_probe_reports_every_factor_and_chance(tmp_path):
    ctx, model, data = setup(tmp_path)
    out = lm.LatentProbe(lm.LatentProbe.Config(max_sequences=40), ctx).compute(EvalContext(model, data))
    assert set(out) == {f"{g}/{f}/{k}" for g, f in (("static", "identity"), ("dynamic", "motion"))
                        for k in ("chance", "z_f", "z_t")}
    assert all(0.0 <= v <= 1.0 for v in out.values())


def test_reconstruction_mse_matches_a_direct_computation(tmp_path):
    ctx, model, data = setup(tmp_path)
    mse = lm.Reconstruction(lm.Reconstruction.Config(max_sequences=40), ctx).compute(EvalContext(model, data))["mse"]
    x = torch.stack([data.split("test")[i]["x"] for i in range(40)])
    assert abs(mse - float(((model.reconstruct(x) - x) ** 2).mean())) < 1e-6


def test_encoding_is_shared_by_both_metrics(tmp_path, monkeypatch):
    ctx, model, data = setup(tmp_path)
    ev = EvalContext(model, data, "cpu", batch_size=16)
    calls = []
    real = ev._encode
    monkeypatch.setattr(ev, "_encode", lambda *a: calls.append(1) or real(*a))
    lm.Reconstruction(lm.Reconstruction.Config(max_sequences=40), ctx).compute(ev)
    lm.LatentProbe(lm.LatentProbe.Config(max_sequences=40), ctx).compute(ev)
    assert len(calls) == 1
