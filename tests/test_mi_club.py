"""The ``mi-club`` regularizer plug-in."""

from __future__ import annotations

import math
from types import SimpleNamespace

import attrs
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.latent import mi_club
from disentangle_plugins.latent.mi_club import MutualInformationCLUB, club_estimate
from disentangle_plugins.latent.mi_mws import mws_mutual_information


def _brute_force(z, mean, logvar):
    """sum_t [mean_i log q(z_i,t | f_i) - mean_i mean_j log q(z_j,t | f_i)], one pair at a time."""
    b, t_len, _ = z.shape
    total = 0.0
    for t in range(t_len):
        for i in range(b):
            def log_q(j):
                return float(disentangle.gaussian_log_density(z[j, t], mean[i, 0], logvar[i, 0]).sum())
            total += (log_q(i) - sum(log_q(j) for j in range(b)) / b) / b
    return total


def test_closed_form_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 3, 2, generator=g, dtype=torch.float64)
    mean = torch.randn(5, 1, 2, generator=g, dtype=torch.float64)
    logvar = torch.randn(5, 1, 2, generator=g, dtype=torch.float64) * 0.3
    assert float(club_estimate(z, mean, logvar)) == pytest.approx(_brute_force(z, mean, logvar), abs=1e-9)


def _ctx(tmp_path, zf, zt):
    ctx = testing.tiny_context(tmp_path, dataset_size=1000)
    return attrs.evolve(ctx, model=disentangle.ModelSpec(z_f_dim=zf, z_t_dim=zt, hidden_dim=8))


def _fit_q(reg, draw, steps=300):
    """Train q alone, a fresh batch of codes each step (as in training), through the returned loss;
    then its value on a fresh batch."""
    opt = torch.optim.Adam(reg.parameters(), lr=1e-2)
    for _ in range(steps + 1):
        f, z = draw()
        out = SimpleNamespace(f=f, z=z)
        loss = reg.loss({}, out, None)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def test_zero_for_independent_codes_however_sharp_unlike_mws(tmp_path):
    """The case mi-mws cannot tell apart (benchmarks/mi_mws_regimes.py): independent codes, every
    sequence its own value, sharp posteriors. mi-mws sits at its ceiling for both; mi-club, once q
    has learnt, is near 0 for independent codes and large for dependent ones."""
    g = torch.Generator().manual_seed(0)
    m, t, zf, zt = 64, 4, 8, 2

    def independent():
        return torch.randn(m, zf, generator=g), torch.randn(m, t, zt, generator=g)

    def dependent():
        f = torch.randn(m, zf, generator=g)
        return f, (f[:, None, :zt] * 1.5).expand(m, t, zt) + 0.05 * torch.randn(m, t, zt, generator=g)

    sharp = math.log(1e-4)
    for f, z in (independent(), dependent()):
        mws = float(mws_mutual_information(f, f, torch.full_like(f, sharp), z, z, torch.full_like(z, sharp), 1000))
        assert mws == pytest.approx(t * (math.log(1000) + math.log(m)), rel=0.01)
    torch.manual_seed(0)
    club_ind = _fit_q(MutualInformationCLUB(MutualInformationCLUB.Config(hidden=32), _ctx(tmp_path, zf, zt)), independent)
    club_dep = _fit_q(MutualInformationCLUB(MutualInformationCLUB.Config(hidden=32), _ctx(tmp_path, zf, zt)), dependent)
    assert abs(club_ind) < 0.5, club_ind
    assert club_dep > 5 * t, club_dep


def test_the_penalty_trains_the_encoder_not_q_and_q_fits_the_codes(tmp_path):
    """q's gradient is that of its likelihood on detached codes; the codes' gradient is that of L."""
    torch.manual_seed(1)
    reg = MutualInformationCLUB(MutualInformationCLUB.Config(hidden=16), _ctx(tmp_path, 6, 3))
    f = torch.randn(10, 6, requires_grad=True)
    z = torch.randn(10, 4, 3, requires_grad=True)
    out = SimpleNamespace(f=f, z=z)
    value = reg.loss({}, out, None)
    value.backward()
    q_grads = [p.grad.clone() for p in reg.parameters()]
    # the value is L alone
    mean, logvar = reg.predict(f.detach())
    torch.testing.assert_close(value.detach(), club_estimate(z.detach(), mean.detach(), logvar.detach()))
    # q's gradient: that of its negative log-likelihood only
    reg.zero_grad()
    mi_club.gaussian_nll(z.detach(), *reg.predict(f.detach())).backward()
    for got, want in zip(q_grads, (p.grad for p in reg.parameters())):
        torch.testing.assert_close(got, want)
    # the codes' gradient: that of L with q fixed
    f2, z2 = f.detach().clone().requires_grad_(True), z.detach().clone().requires_grad_(True)
    club_estimate(z2, *reg.predict(f2, detach_weights=True)).backward()
    torch.testing.assert_close(f.grad, f2.grad)
    torch.testing.assert_close(z.grad, z2.grad)


def test_check_objective(tmp_path):
    ctx = testing.tiny_context(tmp_path, dataset_size=32, batch_size=6)
    reg = MutualInformationCLUB(MutualInformationCLUB.Config(hidden=8), ctx)
    testing.check_objective(reg, ctx)


def test_missing_model_sizes_is_a_clear_error(tmp_path):
    ctx = attrs.evolve(testing.tiny_context(tmp_path), model=None)
    with pytest.raises(disentangle.DisentangleError, match="ctx.model"):
        MutualInformationCLUB(MutualInformationCLUB.Config(), ctx)


def test_config_and_registration():
    testing.check_config_roundtrip(MutualInformationCLUB.Config(hidden=64, max_log_variance=3.0))
    with pytest.raises(ValueError):
        MutualInformationCLUB.Config(hidden=0)
    reg = disentangle.load_registry(entry_points=False, extra=[("mi-club", mi_club)])
    assert reg.plugins[0].status == "ok", reg.plugins[0].error
    assert reg.get("regularizer", "mi-club").factory is MutualInformationCLUB
