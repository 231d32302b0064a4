"""dependence-probe: a predictor of z_t from z_f fitted afresh on frozen codes."""

import math

import numpy as np
import pytest
import torch

from disentangle import DisentangleError, EvalContext, testing
from disentangle.evaluation import Encoded
from disentangle_plugins.evaluation import dependence as dp

T = 5


class Codes:
    """An evaluation context that serves given codes (what ``EvalContext.encoded`` returns)."""

    def __init__(self, splits: dict[str, tuple[np.ndarray, np.ndarray]], z_std: float | None = None):
        self.splits, self.z_std = splits, z_std

    def encoded(self, split: str, limit: int | None = None) -> Encoded:
        f, z = (a[:limit] for a in self.splits[split])
        stds = {} if self.z_std is None else {"f_std": np.zeros_like(f), "z_std": np.full_like(z, self.z_std)}
        return Encoded(f, z, {}, {}, np.zeros(len(f)), 1, **stds)

    def generator(self, name: str = "") -> torch.Generator:
        return torch.Generator().manual_seed(0)


def make(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """z_f (n, 8) and z_1:T (n, T, 4) whose dependence is known."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((n, 8))
    noise = rng.standard_normal((n, T, 4))
    if kind == "independent":
        return f, noise
    if kind == "linear":  # z_t,d = f_d + 0.5 eps: sum_d I(f; z_t,d) = 4 * 0.5 log(1 + 1 / 0.25) per frame
        return f, f[:, None, :4] + 0.5 * noise
    if kind == "even":  # z_t,d = |f_d| + 0.3 eps: uncorrelated with f, so no linear predictor finds it
        return f, np.abs(f[:, None, :4]) + 0.3 * noise
    if kind == "flipped":  # as linear, through other dimensions of f: another set of speakers
        return f, f[:, None, 4:] + 0.5 * noise
    raise ValueError(kind)


def probe(kind: str, **config) -> dict[str, float]:
    ev = Codes({"train": make(kind, 600, 0), "test": make(kind, 300, 1)})
    config = {"epochs": 60, "patience": 5, **config}
    return dp.DependenceProbe(dp.DependenceProbe.Config(**config), None).compute(ev)


def test_independent_codes_score_about_zero():
    out = probe("independent")
    assert abs(out["nats_per_frame"]) < 0.05
    assert abs(out["r2"]) < 0.05
    assert out["nats"] == pytest.approx(T * out["nats_per_frame"])


def test_linear_dependence_scores_its_mutual_information():
    out = probe("linear")
    assert out["nats_per_frame"] == pytest.approx(4 * 0.5 * math.log(1 + 1 / 0.25), rel=0.1)
    assert out["r2"] == pytest.approx(1 / 1.25, abs=0.05)


def test_nonlinear_dependence_is_found():
    z = make("even", 600, 0)[1].reshape(-1, 4)
    f = np.repeat(make("even", 600, 0)[0], T, axis=0)
    assert abs(np.corrcoef(f[:, 0], z[:, 0])[0, 1]) < 0.05  # invisible to a linear probe
    out = probe("even")
    var_abs = 1 - 2 / math.pi
    assert out["r2"] == pytest.approx(var_abs / (var_abs + 0.09), abs=0.08)
    assert out["nats_per_frame"] > 1.0


def test_scores_do_not_depend_on_the_codes_scale():
    ev = {s: make("linear", n, seed) for s, n, seed in (("train", 600, 0), ("test", 300, 1))}
    scaled = {s: (100 * f, 0.01 * z) for s, (f, z) in ev.items()}
    config = dp.DependenceProbe.Config(epochs=60, patience=5)
    a = dp.DependenceProbe(config, None).compute(Codes(ev))
    b = dp.DependenceProbe(config, None).compute(Codes(scaled))
    assert a["nats"] == pytest.approx(b["nats"], rel=1e-3)
    assert a["r2"] == pytest.approx(b["r2"], rel=1e-3)


def test_on_a_model_it_reports_finite_figures_and_is_repeatable(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 8, 8), seq_len=4)
    torch.manual_seed(0)
    model = testing.tiny_model(ctx).eval()
    data = testing.ToyData(ctx, n_train=40, n_test=20)
    metric = dp.DependenceProbe(dp.DependenceProbe.Config(epochs=5, hidden=16), ctx)
    with torch.no_grad():  # as evaluation calls metrics: q must still learn
        first = metric.compute(EvalContext(model, data))
    second = metric.compute(EvalContext(model, data))
    assert set(first) == {"nats", "nats_per_frame", "r2"}
    assert all(math.isfinite(v) for v in first.values())
    assert first == second
    drawn = dp.DependenceProbe(dp.DependenceProbe.Config(epochs=5, hidden=16, codes="sample"), ctx)
    sampled = drawn.compute(EvalContext(model, data))
    assert all(math.isfinite(v) for v in sampled.values()) and sampled != first
    assert sampled == drawn.compute(EvalContext(model, data))  # the draw is seeded by the evaluation


def test_fit_on_test_finds_what_does_not_carry_over_from_the_training_split():
    ev = Codes({"train": make("linear", 600, 0), "test": make("flipped", 600, 1)})
    mi = 4 * 0.5 * math.log(1 + 1 / 0.25)
    config = {"epochs": 60, "patience": 5}
    across = dp.DependenceProbe(dp.DependenceProbe.Config(**config), None).compute(ev)
    within = dp.DependenceProbe(dp.DependenceProbe.Config(fit_on="test", **config), None).compute(ev)
    assert across["nats_per_frame"] < 0.1 * mi  # a q of the training split's mapping tells nothing here
    assert within["nats_per_frame"] == pytest.approx(mi, rel=0.15)


def test_sampled_codes_carry_the_posterior_noise():
    """With codes = "sample" q sees one draw from each posterior: z_t's posterior noise (std 1 here)
    lowers the dependence to that of the noisy codes; the means keep the full figure."""
    splits = {"train": make("linear", 600, 0), "test": make("linear", 300, 1)}
    config = {"epochs": 60, "patience": 5}
    means = dp.DependenceProbe(dp.DependenceProbe.Config(**config), None).compute(Codes(splits, z_std=1.0))
    drawn = dp.DependenceProbe(dp.DependenceProbe.Config(codes="sample", **config), None).compute(
        Codes(splits, z_std=1.0))
    assert means["nats_per_frame"] == pytest.approx(4 * 0.5 * math.log(1 + 1 / 0.25), rel=0.1)
    assert drawn["nats_per_frame"] == pytest.approx(4 * 0.5 * math.log(1 + 1 / 1.25), rel=0.15)
    with pytest.raises(DisentangleError, match="no posterior standard deviations"):
        dp.DependenceProbe(dp.DependenceProbe.Config(codes="sample", **config), None).compute(Codes(splits))


def test_test_halves_go_by_blocks_and_cover_the_split():
    probe = dp.DependenceProbe(dp.DependenceProbe.Config(fit_on="test", block=7), None)
    score, fit, val = probe.halves(100, torch.Generator().manual_seed(0))
    rows = np.concatenate([score, fit, val])
    assert sorted(rows.tolist()) == list(range(100))
    blocks = [set(part // 7) for part in (score, fit, val)]
    assert not (blocks[0] & blocks[1]) and not (blocks[0] & blocks[2]) and not (blocks[1] & blocks[2])
    assert len(blocks[0]) == 15 // 2 and len(blocks[2]) >= 1  # 15 blocks: 7 score, 1 stops


def test_splits_too_small_are_named():
    ev = Codes({"train": make("linear", 5, 0), "test": make("linear", 5, 1)})
    with pytest.raises(DisentangleError, match="too few sequences"):
        dp.DependenceProbe(dp.DependenceProbe.Config(), None).compute(ev)
    with pytest.raises(DisentangleError, match="fit_on = 'test'"):
        dp.DependenceProbe(dp.DependenceProbe.Config(fit_on="test", block=4), None).compute(ev)


def test_bad_config_is_refused():
    with pytest.raises(ValueError):
        dp.DependenceProbe.Config(max_sequences=2)
    with pytest.raises(ValueError):
        dp.DependenceProbe.Config(fit_on="validation")
    with pytest.raises(ValueError, match="'mean', 'sample'"):
        dp.DependenceProbe.Config(codes="median")
