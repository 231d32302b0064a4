"""The ``mi-mws`` regularizer plug-in."""

from __future__ import annotations

import math

import attrs
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.latent import mi_mws
from disentangle_plugins.latent.mi_mws import MutualInformationMWS, mws_mutual_information


def _posterior(g, m, t, zf, zt, scale=1.0):
    f_mean = torch.randn(m, zf, generator=g, dtype=torch.float64)
    f_logvar = torch.randn(m, zf, generator=g, dtype=torch.float64) * 0.5 + math.log(scale)
    z_mean = torch.randn(m, t, zt, generator=g, dtype=torch.float64)
    z_logvar = torch.randn(m, t, zt, generator=g, dtype=torch.float64) * 0.5 + math.log(scale)
    f = f_mean + torch.randn(m, zf, generator=g, dtype=torch.float64) * (0.5 * f_logvar).exp()
    z = z_mean + torch.randn(m, t, zt, generator=g, dtype=torch.float64) * (0.5 * z_logvar).exp()
    return f, f_mean, f_logvar, z, z_mean, z_logvar


def _log_normal(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 / math.exp(logvar))


def _brute_force(f, f_mean, f_logvar, z, z_mean, z_logvar, n):
    """The MWS formula, one scalar at a time."""
    f, f_mean, f_logvar, z, z_mean, z_logvar = (a.tolist() for a in (f, f_mean, f_logvar, z, z_mean, z_logvar))
    m, t_len = len(f), len(z[0])

    def log_qf(i, j):
        return sum(_log_normal(f[i][d], f_mean[j][d], f_logvar[j][d]) for d in range(len(f[i])))

    def log_qz(i, j, t):
        return sum(_log_normal(z[i][t][d], z_mean[j][t][d], z_logvar[j][t][d]) for d in range(len(z[i][t])))

    def log_mws(terms):
        return math.log(sum(math.exp(v) for v in terms) / (n * m))

    total = 0.0
    for t in range(t_len):
        for i in range(m):
            joint = log_mws([log_qf(i, j) + log_qz(i, j, t) for j in range(m)])
            marg_f = log_mws([log_qf(i, j) for j in range(m)])
            marg_z = log_mws([log_qz(i, j, t) for j in range(m)])
            total += (joint - marg_f - marg_z) / m
    return total


@pytest.mark.parametrize("seed, n", [(0, 5), (1, 1000), (2, 60000)])
def test_matches_brute_force(seed, n):
    g = torch.Generator().manual_seed(seed)
    args = _posterior(g, m=5, t=3, zf=4, zt=2)
    want = _brute_force(*args, n)
    got = mws_mutual_information(*args, dataset_size=n)
    assert got.dim() == 0
    assert abs(float(got) - want) < 1e-5, (float(got), want)
    got32 = mws_mutual_information(*(a.float() for a in args), dataset_size=n)
    assert abs(float(got32) - want) < 1e-3


def test_dataset_size_only_shifts_by_t_log_n():
    g = torch.Generator().manual_seed(3)
    args = _posterior(g, m=6, t=4, zf=3, zt=2)
    a = mws_mutual_information(*args, dataset_size=10)
    b = mws_mutual_information(*args, dataset_size=10_000)
    torch.testing.assert_close(b - a, torch.tensor(4 * math.log(1000), dtype=torch.float64))


def _grid(k, t, zt, dependent, g):
    """M = k*k sequences, small posterior variances. Independent: z_f takes k values and z_t takes
    k values in all k*k combinations. Dependent: z_t is a function of z_f, which is distinct per
    sequence."""
    m, zf, spread = k * k, 2, 10.0
    f_values = torch.randn(m, zf, generator=g, dtype=torch.float64) * spread
    if dependent:
        f_mean = f_values
        z_mean = torch.tanh(f_mean[:, :1, None]).expand(m, t, zt) * spread + torch.arange(t)[None, :, None]
        z_mean = z_mean + f_mean[:, None, 1:2] * torch.linspace(-1, 1, zt)
    else:
        a, b = torch.arange(m) // k, torch.arange(m) % k
        f_mean = f_values[a]
        z_mean = (torch.randn(k, t, zt, generator=g, dtype=torch.float64) * spread)[b]
    logvar = math.log(1e-4)
    f_logvar = torch.full_like(f_mean, logvar)
    z_logvar = torch.full_like(z_mean, logvar)
    f = f_mean + torch.randn(f_mean.shape, generator=g, dtype=torch.float64) * 1e-2
    z = z_mean + torch.randn(z_mean.shape, generator=g, dtype=torch.float64) * 1e-2
    return f, f_mean, f_logvar, z, z_mean, z_logvar


def test_dependent_latents_have_larger_mi_than_independent_ones():
    g = torch.Generator().manual_seed(0)
    k, t, n = 4, 3, 1000
    dep = float(mws_mutual_information(*_grid(k, t, 2, True, g), dataset_size=n))
    ind = float(mws_mutual_information(*_grid(k, t, 2, False, g), dataset_size=n))
    # in-batch MI: log M per step when z_t determines the sequence, 0 when the codes repeat in every
    # pairing (the grid); plus T log N
    assert dep == pytest.approx(t * (math.log(n) + math.log(k * k)), abs=0.05)
    assert ind == pytest.approx(t * math.log(n), abs=0.05)
    assert dep - ind > 0.9 * t * math.log(k * k)


def test_independent_codes_of_their_own_sit_at_the_ceiling_until_the_posteriors_overlap():
    """Independent continuous codes, every sequence its own value: sharp posteriors score the
    ceiling, as dependent codes do, and nothing pulls; only posteriors about as wide as the codes'
    spread bring the estimate down, and then minimising it widens them (benchmarks/mi_mws_regimes.py)."""
    g = torch.Generator().manual_seed(6)
    m, t, n, zf, zt = 16, 3, 1000, 32, 8
    f_mean = torch.randn(m, zf, generator=g, dtype=torch.float64)
    z_mean = torch.randn(m, t, zt, generator=g, dtype=torch.float64)  # drawn apart from f_mean
    ceiling = t * (math.log(n) + math.log(m))
    pulls = {}
    for sigma in (0.05, 3.0):
        f_logvar = torch.full_like(f_mean, 2 * math.log(sigma)).requires_grad_(True)
        z_logvar = torch.full_like(z_mean, 2 * math.log(sigma))
        f = f_mean + (0.5 * f_logvar).exp() * torch.randn(f_mean.shape, generator=g, dtype=torch.float64)
        z = z_mean + sigma * torch.randn(z_mean.shape, generator=g, dtype=torch.float64)
        value = mws_mutual_information(f, f_mean, f_logvar, z, z_mean, z_logvar, dataset_size=n)
        value.backward()
        pulls[sigma] = float(f_logvar.grad.sum())
        if sigma < 1:
            assert float(value.detach()) == pytest.approx(ceiling, abs=1e-6)
        else:
            assert float(value.detach()) < ceiling - 0.5 * t * math.log(m)
    assert abs(pulls[0.05]) < 1e-9
    assert pulls[3.0] < -1e-3  # lowering the estimate means widening z_f's posteriors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_never_above_its_ceiling(seed):
    """sum_j q_f q_z <= (sum_j q_f)(sum_j q_z): at most T * (log N + log M), whatever the posteriors."""
    g = torch.Generator().manual_seed(seed)
    m, t, n = 6, 3, 500
    for scale in (1e-3, 1.0, 100.0):
        got = float(mws_mutual_information(*_posterior(g, m=m, t=t, zf=3, zt=2, scale=scale), dataset_size=n))
        assert got <= t * (math.log(n) + math.log(m)) + 1e-9


def test_at_its_ceiling_the_gradient_vanishes():
    """Posteriors far apart (as on SMMNIST at weight 0.1): the estimate is T * (log N + log M)
    and nothing moves it, so the penalty trains nothing (docs/results.md)."""
    g = torch.Generator().manual_seed(5)
    m, t, n = 8, 3, 5000
    f, f_mean, f_logvar, z, z_mean, z_logvar = _posterior(g, m=m, t=t, zf=4, zt=3, scale=1e-4)
    args = [a.clone().requires_grad_(True) for a in (f * 100, f_mean * 100, f_logvar, z * 100, z_mean * 100, z_logvar)]
    value = mws_mutual_information(*args, dataset_size=n)
    assert float(value.detach()) == pytest.approx(t * (math.log(n) + math.log(m)), abs=1e-9)
    value.backward()
    for a in args:
        assert float(a.grad.abs().max()) < 1e-12


def test_gradient_flows_to_all_posterior_parameters():
    g = torch.Generator().manual_seed(4)
    args = [a.clone().requires_grad_(True) for a in _posterior(g, m=4, t=2, zf=3, zt=2)]
    mws_mutual_information(*args, dataset_size=100).backward()
    for a in args:
        assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_check_objective(tmp_path):
    ctx = testing.tiny_context(tmp_path, dataset_size=32, batch_size=6)
    reg = MutualInformationMWS(MutualInformationMWS.Config(), ctx)
    assert reg.dataset_size == 32
    testing.check_objective(reg, ctx)


def test_loss_uses_model_output(tmp_path):
    ctx = testing.tiny_context(tmp_path, dataset_size=50)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx, 3)  # the actual batch size M = 3, not ctx.batch_size
    out = model(batch["x"])
    reg = MutualInformationMWS(MutualInformationMWS.Config(), ctx)
    want = mws_mutual_information(out.f, out.f_mean, out.f_logvar, out.z, out.z_mean, out.z_logvar, 50)
    torch.testing.assert_close(reg.loss(batch, out, model), want)


def test_missing_dataset_size_is_a_clear_error(tmp_path):
    ctx = testing.tiny_context(tmp_path)
    with pytest.raises(disentangle.DisentangleError, match="dataset_size"):
        MutualInformationMWS(MutualInformationMWS.Config(), attrs.evolve(ctx, dataset_size=None))


def test_config_and_registration():
    testing.check_config_roundtrip(MutualInformationMWS.Config())
    reg = disentangle.load_registry(entry_points=False, extra=[("mi-mws", mi_mws)])
    assert reg.plugins[0].status == "ok", reg.plugins[0].error
    assert reg.get("regularizer", "mi-mws").factory is MutualInformationMWS
