"""The ``triplet-scc`` regularizer plug-in."""

from __future__ import annotations

import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.latent import triplet_scc
from disentangle_plugins.latent.triplet_scc import TripletSCC, derangement, shuffle_frames, triplet_loss


# ----- the pure loss -----------------------------------------------------------------------------

def test_triplet_loss_known_values():
    anchor = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    positive = torch.tensor([[3.0, 4.0], [1.0, 1.0], [1.0, 0.0]])  # D+ = 5, 0, 1
    negative = torch.tensor([[0.0, 1.0], [4.0, 5.0], [0.0, 1.5]])  # D- = 1, 5, 1.5
    # margin 1: max(5-1+1, 0)=5, max(0-5+1, 0)=0, max(1-1.5+1, 0)=0.5 -> mean 5.5/3
    torch.testing.assert_close(triplet_loss(anchor, positive, negative, 1.0), torch.tensor(5.5 / 3))
    # margin 0: 4, 0, 0 -> 4/3
    torch.testing.assert_close(triplet_loss(anchor, positive, negative, 0.0), torch.tensor(4.0 / 3))
    # margin 6: 10, 1, 5.5 -> 16.5/3
    torch.testing.assert_close(triplet_loss(anchor, positive, negative, 6.0), torch.tensor(5.5))


def test_triplet_loss_matches_torch():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(7, 5, generator=g) for _ in range(3))
    want = torch.nn.functional.triplet_margin_loss(a, p, n, margin=0.7, eps=0.0)
    torch.testing.assert_close(triplet_loss(a, p, n, 0.7), want)


def test_triplet_loss_gradient_is_finite_when_positive_equals_anchor():
    a = torch.randn(3, 4, requires_grad=True)
    loss = triplet_loss(a, a.detach().clone(), torch.zeros(3, 4), 10.0)
    loss.backward()
    assert torch.isfinite(a.grad).all()


# ----- helpers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 4, 7, 16])
def test_derangement_has_no_fixed_point(n):
    g = torch.Generator().manual_seed(n)
    seen = set()
    for _ in range(200):
        d = derangement(n, generator=g)
        assert d.dtype == torch.long and d.shape == (n,)
        assert sorted(d.tolist()) == list(range(n)), "not a permutation"
        assert (d != torch.arange(n)).all(), f"fixed point in {d.tolist()}"
        seen.add(tuple(d.tolist()))
    assert len(seen) > 1 or n == 2  # random, not a fixed rule (n = 2 has a single derangement)


def test_derangement_every_other_item_reachable():
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(5, 5)
    for _ in range(500):
        d = derangement(5, generator=g)
        hits[torch.arange(5), d] += 1
    assert (hits.diag() == 0).all()
    assert (hits + torch.eye(5) > 0).all(), "some negative is never drawn"


@pytest.mark.parametrize("n", [0, 1])
def test_derangement_needs_two_items(n):
    with pytest.raises(disentangle.DisentangleError, match="at least 2"):
        derangement(n)


def test_shuffle_frames_is_a_permutation_per_row():
    g = torch.Generator().manual_seed(0)
    perm = shuffle_frames(6, 5, generator=g)
    assert perm.shape == (6, 5)
    for row in perm:
        assert sorted(row.tolist()) == list(range(5))
    assert len({tuple(r.tolist()) for r in perm}) > 1, "rows should be shuffled independently"


# ----- the regularizer ---------------------------------------------------------------------------

@pytest.mark.parametrize("use_mean", [True, False])
def test_check_objective(tmp_path, use_mean):
    ctx = testing.tiny_context(tmp_path)
    reg = TripletSCC(TripletSCC.Config(margin=1.0, use_mean=use_mean), ctx)
    loss = testing.check_objective(reg, ctx)
    assert loss >= 0


class _NotFramewise(disentangle.Encoder):
    """The same encoder, declared as mixing frames (forces re-encoding the shuffled frames)."""

    framewise = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.out_dim = inner.out_dim

    def forward(self, x):
        return self.inner(x)


def test_reusing_features_equals_reencoding(tmp_path):
    ctx = testing.tiny_context(tmp_path, seq_len=5, batch_size=6)
    torch.manual_seed(0)
    framewise = testing.tiny_model(ctx)
    mixing = testing.tiny_model(ctx, encoder=_NotFramewise(framewise.encoder), decoder=framewise.decoder)
    # the encoder and decoder are shared modules; copy the LSTMs and heads
    state = {k: v for k, v in framewise.state_dict().items() if not k.startswith("encoder.")}
    mixing.load_state_dict(state, strict=False)
    batch = testing.random_batch(ctx)
    reg = TripletSCC(TripletSCC.Config(margin=0.5), ctx)
    losses = []
    for model in (framewise, mixing):
        out = model(batch["x"])
        torch.manual_seed(123)
        losses.append(reg.loss(batch, out, model))
    torch.testing.assert_close(losses[0], losses[1])


def test_large_margin_gives_margin_plus_distance_gap(tmp_path):
    """With a margin far above all distances the hinge is never active: the loss is linear."""
    ctx = testing.tiny_context(tmp_path, batch_size=5)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    torch.manual_seed(7)
    small = TripletSCC(TripletSCC.Config(margin=1000.0), ctx).loss(batch, out, model)
    torch.manual_seed(7)
    large = TripletSCC(TripletSCC.Config(margin=1001.5), ctx).loss(batch, out, model)
    torch.testing.assert_close(large - small, torch.tensor(1.5))


def test_batch_of_one_is_a_clear_error(tmp_path):
    ctx = testing.tiny_context(tmp_path, batch_size=1)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx, 1)
    reg = TripletSCC(TripletSCC.Config(), ctx)
    with pytest.raises(disentangle.DisentangleError, match="at least 2 sequences"):
        reg.loss(batch, model(batch["x"]), model)


def test_config():
    testing.check_config_roundtrip(TripletSCC.Config())
    testing.check_config_roundtrip(TripletSCC.Config(margin=0.25, use_mean=False))
    with pytest.raises(ValueError):
        TripletSCC.Config(margin=-1.0)


def test_registered():
    reg = disentangle.load_registry(entry_points=False, extra=[("triplet-scc", triplet_scc)])
    assert reg.plugins[0].status == "ok", reg.plugins[0].error
    assert reg.get("regularizer", "triplet-scc").factory is TripletSCC


def watched_static_posterior(tmp_path, monkeypatch, seq_len, batch_size):
    """A tiny model, a batch and its output; ``seen`` collects the features that the regularizer
    then passes to ``model.static_posterior``."""
    ctx = testing.tiny_context(tmp_path, seq_len=seq_len, batch_size=batch_size)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    seen = []
    original = model.static_posterior
    monkeypatch.setattr(model, "static_posterior", lambda h: seen.append(h.detach()) or original(h))
    return ctx, model, batch, out, seen


def test_positive_sees_each_sequence_with_its_frames_shuffled(tmp_path, monkeypatch):
    ctx, model, batch, out, seen = watched_static_posterior(tmp_path, monkeypatch, seq_len=6, batch_size=8)
    TripletSCC(TripletSCC.Config(), ctx).loss(batch, out, model)
    (shuffled,) = seen
    feats = out.features.detach()
    moved = 0
    for i in range(8):
        # row i of the positive's input holds exactly the frames of sequence i, in some order
        match = torch.cdist(shuffled[i], feats[i]) < 1e-6
        assert (match.sum(1) >= 1).all() and (match.sum(0) >= 1).all()
        moved += not torch.equal(shuffled[i], feats[i])
    assert moved > 0, "no sequence had its frames shuffled"


# ----- positive = "other-half" (not in the paper) ------------------------------------------------

@pytest.mark.parametrize("use_mean", [True, False])
def test_other_half_check_objective(tmp_path, use_mean):
    ctx = testing.tiny_context(tmp_path, seq_len=5)
    reg = TripletSCC(TripletSCC.Config(positive="other-half", use_mean=use_mean), ctx)
    assert testing.check_objective(reg, ctx) >= 0


def other_half_by_hand(model, first, second, seed, use_mean):
    """The other-half loss at a margin of 1000 (the hinge never active), from the halves' features."""
    torch.manual_seed(seed)
    (a_mean, a_logvar), (p_mean, p_logvar) = model.static_posterior(first), model.static_posterior(second)
    if use_mean:
        a, p = a_mean, p_mean
    else:
        a = a_mean + torch.randn_like(a_mean) * torch.exp(0.5 * a_logvar)
        p = p_mean + torch.randn_like(p_mean) * torch.exp(0.5 * p_logvar)
    n = a[derangement(len(a))]
    return 1000.0 + (torch.linalg.vector_norm(a - p, dim=-1) - torch.linalg.vector_norm(a - n, dim=-1)).mean()


def test_other_half_anchors_on_the_first_half_and_matches_the_second(tmp_path, monkeypatch):
    ctx, model, batch, out, seen = watched_static_posterior(tmp_path, monkeypatch, seq_len=5, batch_size=6)
    reg = TripletSCC(TripletSCC.Config(positive="other-half", margin=1000.0), ctx)
    torch.manual_seed(3)
    loss = reg.loss(batch, out, model)
    first, second = seen
    feats = out.features.detach()
    assert torch.equal(first, feats[:, :2]) and torch.equal(second, feats[:, 2:])  # T // 2 = 2 frames first
    torch.testing.assert_close(loss, other_half_by_hand(model, feats[:, :2], feats[:, 2:], 3, use_mean=True))


class _MixesFrames(_NotFramewise):
    """Each frame's features plus the mean over the sequence's frames: a frame's code depends on
    which frames it is encoded with."""

    def forward(self, x):
        h = self.inner(x)
        return h + h.mean(1, keepdim=True)


def test_other_half_encodes_each_half_on_its_own_when_frames_interact(tmp_path):
    ctx = testing.tiny_context(tmp_path, seq_len=5, batch_size=4)
    torch.manual_seed(0)
    inner = testing.tiny_model(ctx)
    model = testing.tiny_model(ctx, encoder=_MixesFrames(inner.encoder), decoder=inner.decoder)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    reg = TripletSCC(TripletSCC.Config(positive="other-half", margin=1000.0), ctx)
    torch.manual_seed(5)
    loss = reg.loss(batch, out, model)
    x = batch["x"]
    want = other_half_by_hand(model, model.encoder(x[:, :2]), model.encoder(x[:, 2:]), 5, use_mean=True)
    torch.testing.assert_close(loss, want)
    sliced = other_half_by_hand(model, out.features[:, :2], out.features[:, 2:], 5, use_mean=True)
    assert not torch.allclose(loss, sliced), "the halves must not be cut from the whole sequence's features"


def test_other_half_with_samples_draws_anchor_and_positive(tmp_path):
    ctx = testing.tiny_context(tmp_path, seq_len=6, batch_size=5)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    reg = TripletSCC(TripletSCC.Config(positive="other-half", margin=1000.0, use_mean=False), ctx)
    torch.manual_seed(9)
    loss = reg.loss(batch, out, model)
    f = out.features
    torch.testing.assert_close(loss, other_half_by_hand(model, f[:, :3], f[:, 3:], 9, use_mean=False))
    assert not torch.allclose(loss, other_half_by_hand(model, f[:, :3], f[:, 3:], 9, use_mean=True))


def test_other_half_needs_two_frames(tmp_path):
    ctx = testing.tiny_context(tmp_path, seq_len=1, batch_size=3)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    reg = TripletSCC(TripletSCC.Config(positive="other-half"), ctx)
    with pytest.raises(disentangle.DisentangleError, match="at least 2 frames"):
        reg.loss(batch, model(batch["x"]), model)


def test_positive_config():
    testing.check_config_roundtrip(TripletSCC.Config(positive="other-half"))
    with pytest.raises(ValueError):
        TripletSCC.Config(positive="half")
