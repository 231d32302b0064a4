"""The S3VAE backbone: ELBO terms, shapes, generation and swapping."""

import torch

from disentangle import ModelSpec, S3VAE, gaussian_kl, gaussian_log_density, testing


def model_and_batch(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 8, 8), seq_len=5)
    torch.manual_seed(0)
    return testing.tiny_model(ctx), testing.random_batch(ctx, 3)["x"], ctx


def test_gaussian_kl_known_values():
    zero = torch.zeros(1)
    assert torch.allclose(gaussian_kl(zero, zero, zero, zero), zero)
    # KL(N(1, 1) || N(0, 1)) = 0.5
    assert torch.allclose(gaussian_kl(torch.ones(1), zero, zero, zero), torch.tensor([0.5]))
    # KL(N(0, e^2) || N(0, 1)) = 0.5 (e^2 - 1 - 2)
    e2 = torch.tensor([2.0])
    assert torch.allclose(gaussian_kl(zero, e2, zero, zero), 0.5 * (torch.exp(e2) - 1 - e2))
    assert torch.allclose(gaussian_log_density(zero, zero, zero), torch.tensor([-0.5 * 1.8378770664093453]))


def test_forward_shapes_and_elbo(tmp_path):
    model, x, ctx = model_and_batch(tmp_path)
    out = model(x)
    assert out.f.shape == (3, 8) and out.z.shape == (3, 5, 4) and out.prior_mean.shape == (3, 5, 4)
    assert out.recon_nll.shape == out.kl_f.shape == out.kl_z.shape == (3,)
    assert (out.kl_f >= 0).all()
    expected = (out.recon_nll + out.kl_f + out.kl_z).mean()
    assert torch.allclose(out.vae_loss, expected)
    # the KL of z_f is the analytic one against N(0, I)
    manual = 0.5 * (out.f_mean ** 2 + out.f_logvar.exp() - 1 - out.f_logvar).sum(-1)
    assert torch.allclose(out.kl_f, manual, atol=1e-5)


def test_posteriors_are_forwards_and_encode_their_means_without_gradients(tmp_path):
    model, x, _ = model_and_batch(tmp_path)
    out = model(x)
    (f_mean, f_logvar), (z_mean, z_logvar) = model.posteriors(x)
    for a, b in ((f_mean, out.f_mean), (f_logvar, out.f_logvar), (z_mean, out.z_mean), (z_logvar, out.z_logvar)):
        assert torch.allclose(a, b) and a.requires_grad
    f, z = model.encode(x)
    assert torch.allclose(f, f_mean) and torch.allclose(z, z_mean)
    assert not f.requires_grad and not z.requires_grad


def test_dynamic_posterior_is_causal(tmp_path):
    model, x, _ = model_and_batch(tmp_path)
    x2 = x.clone()
    x2[:, 3:] = torch.rand_like(x2[:, 3:])
    with torch.no_grad():
        m1, _ = model.dynamic_posterior(model.encoder(x))
        m2, _ = model.dynamic_posterior(model.encoder(x2))
        f1, _ = model.static_posterior(model.encoder(x))
        f2, _ = model.static_posterior(model.encoder(x2))
    assert torch.allclose(m1[:, :3], m2[:, :3])  # q(z_t | x_<=t) ignores the future
    assert not torch.allclose(m1[:, 3:], m2[:, 3:])
    assert not torch.allclose(f1, f2)  # q(z_f | x_1:T) sees the whole sequence


def test_prior_conditions_on_the_past_only(tmp_path):
    model, _, _ = model_and_batch(tmp_path)
    z = torch.randn(2, 5, 4)
    z2 = z.clone()
    z2[:, 2:] = torch.randn(2, 3, 4)
    with torch.no_grad():
        a, _ = model.prior(z)
        b, _ = model.prior(z2)
    assert torch.allclose(a[:, :3], b[:, :3]) and not torch.allclose(a[:, 3:], b[:, 3:])


def test_generate_swap_reconstruct_shapes(tmp_path):
    model, x, _ = model_and_batch(tmp_path)
    model.eval()
    assert model.generate(4, 6).shape == (4, 6, 3, 8, 8)
    assert model.reconstruct(x).shape == x.shape
    swapped = model.swap(x[:2], x[1:])
    f_a, _ = model.encode(x[:2])
    _, z_b = model.encode(x[1:])
    assert torch.allclose(swapped, model.decoder.mean(model.decode(f_a, z_b)))


def test_a_training_step_changes_every_part(tmp_path):
    model, x, _ = model_and_batch(tmp_path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(x).vae_loss.backward()
    opt.step()
    after = model.state_dict()
    for prefix in ("encoder", "decoder", "static_rnn", "dynamic_rnn", "prior_rnn", "static_head", "prior_head"):
        changed = [k for k in after if k.startswith(prefix) and not torch.equal(before[k], after[k])]
        assert changed, f"{prefix} did not change"


def test_model_spec_latent_dim():
    assert ModelSpec(3, 2, 5).latent_dim == 5
    assert isinstance(S3VAE, type)
