"""``triplet-scc``: the static consistency constraint of S3VAE as a triplet loss (Zhu et al., eq. 5).

    L_SCC = mean_i max(D(z_f, z_f+) - D(z_f, z_f-) + margin, 0),   D = Euclidean distance

- **anchor** z_f: the static code of sequence i. By default (``use_mean = true``) the posterior
  mean of q(z_f | x_1:T) (``out.f_mean``): the constraint is about *what* the encoder infers, and
  the mean is a noise-free, lower-variance target. With ``use_mean = false`` the reparameterised
  samples are used instead (``out.f`` for the anchor, fresh samples for the positive).
- **positive** z_f+: the static code of the *same* sequence with its frames shuffled in time,
  ``model.static_posterior(features[:, perm])``. Each sequence gets its own random permutation
  (it may happen to be the identity when T is small; that is still a valid positive). With a
  frame-wise encoder (``model.encoder.framewise``) the features of ``out`` are permuted and
  reused; otherwise the shuffled frames are re-encoded.
- With ``positive = "other-half"`` (not in the paper): the anchor is z_f of the sequence's first
  half of frames (``T // 2``), the positive z_f of its second half, both inferred by the same
  static posterior. The two halves share what is static (the speaker, the appearance) but not the
  frames: a shuffled copy holds the very frames of the anchor, content and all, so it cannot
  penalise content in z_f; the other half can, where the two halves' content differs. Needs
  ``T >= 2``.
- **negative** z_f-: the anchor of *another* sequence of the batch, picked by a random
  derangement (a permutation with no fixed point), so the batch needs at least 2 sequences.
  Under torchrun, the anchor of another sequence of the *global* batch (``World.gather``), drawn
  uniformly among all but the sequence itself.
  Gradients flow through anchors, positives and negatives alike (across processes too).
"""

from __future__ import annotations

import attrs
import torch

import disentangle

__all__ = ["TripletSCC", "derangement", "shuffle_frames", "triplet_loss"]


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                 margin: float) -> torch.Tensor:
    """``mean_i max(||a_i - p_i|| - ||a_i - n_i|| + margin, 0)`` over rows of ``(B, D)`` tensors."""
    d_pos = torch.linalg.vector_norm(anchor - positive, dim=-1)
    d_neg = torch.linalg.vector_norm(anchor - negative, dim=-1)
    return torch.clamp(d_pos - d_neg + margin, min=0.0).mean()


def derangement(n: int, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)`` with no fixed point (``d[i] != i`` for all i), ``n >= 2``.

    Built as a random cyclic order ``s`` of the items, each mapped to the one ``k`` places further
    (``k`` random in 1..n-1): ``d[s[j]] = s[(j + k) % n]``. This is not uniform over all
    derangements (it only makes unions of equal cycles), which is fine for picking negatives.

    Drawn on ``device`` (with a ``generator`` of that device), with no value read back by the host:
    in a training step on a GPU this neither copies from the host nor waits for the GPU."""
    if n < 2:
        raise disentangle.DisentangleError(
            f"a derangement needs at least 2 items, got {n}",
            hint="the SCC triplet loss takes its negatives from other sequences of the batch: use batch_size >= 2",
        )
    order = torch.randperm(n, generator=generator, device=device)
    shift = torch.randint(1, n, (1,), generator=generator, device=device)
    d = torch.empty_like(order)
    d[order] = order[(torch.arange(n, device=order.device) + shift) % n]  # order.roll(-shift)
    return d


def shuffle_frames(batch_size: int, steps: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """``(batch_size, steps)`` indices: an independent random permutation of ``range(steps)`` per row,
    drawn on ``device``."""
    return torch.argsort(torch.rand(batch_size, steps, generator=generator, device=device), dim=1)


def _sample(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)


def _encoded(batch: disentangle.Batch, out: disentangle.S3VAEOutput, model: disentangle.S3VAE,
             index: tuple) -> torch.Tensor:
    """The features of the frames that ``index`` (sequences, frames) picks: cut from ``out.features``
    where the encoder is frame-wise, else those frames encoded on their own (frames interact there)."""
    if getattr(model.encoder, "framewise", False):
        return out.features[index]
    return model.encoder(batch["x"].to(out.features.device)[index])


class TripletSCC(disentangle.Regularizer):
    """Static consistency: z_f of a sequence is close to z_f of its time-shuffled copy (or: z_f of
    its first half to z_f of its second half) and far from z_f of another sequence."""

    @attrs.frozen
    class Config:
        margin: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
        """The triplet margin m."""
        use_mean: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
        """Compare posterior means of q(z_f | x) (true) or posterior samples (false)."""
        positive: str = attrs.field(default="shuffled",
                                    validator=disentangle.validators.one_of("shuffled", "other-half"))
        """``shuffled``: the sequence with its frames shuffled, anchored on its z_f (the paper);
        ``other-half``: the second half of the sequence, anchored on z_f of its first half."""

    def __init__(self, config: "TripletSCC.Config", ctx: disentangle.BuildContext):
        super().__init__()
        self.margin = float(config.margin)
        self.use_mean = bool(config.use_mean)
        self.positive = config.positive
        self.world = ctx.world

    def loss(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
             model: disentangle.S3VAE) -> torch.Tensor:
        b = out.features.shape[0]
        if b < 2:
            raise disentangle.DisentangleError(
                f"triplet-scc needs at least 2 sequences per batch (negatives come from other "
                f"sequences), got a batch of {b}",
                hint="raise the batch size",
            )
        device = out.features.device
        if self.positive == "other-half":
            anchor, positive = self._halves(batch, out, model)
        else:
            anchor, positive = self._shuffled(batch, out, model)
        if self.world.active:  # a negative from the whole global batch, never the sequence itself
            pool = self.world.gather(anchor)
            own = self.world.rank * b + torch.arange(b, device=device)
            negative = pool[(own + torch.randint(1, len(pool), (b,), device=device)) % len(pool)]
        else:
            negative = anchor[derangement(b, device=device)]
        return triplet_loss(anchor, positive, negative, self.margin)

    def _shuffled(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
                  model: disentangle.S3VAE) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = out.features.shape[:2]
        device = out.features.device
        perm = shuffle_frames(b, t, device=device)  # drawn where the batch is: no host copy, no wait
        rows = torch.arange(b, device=device).unsqueeze(1)
        pos_mean, pos_logvar = model.static_posterior(_encoded(batch, out, model, (rows, perm)))
        if self.use_mean:
            return out.f_mean, pos_mean
        return out.f, _sample(pos_mean, pos_logvar)

    def _halves(self, batch: disentangle.Batch, out: disentangle.S3VAEOutput,
                model: disentangle.S3VAE) -> tuple[torch.Tensor, torch.Tensor]:
        t = out.features.shape[1]
        if t < 2:
            raise disentangle.DisentangleError(
                f"triplet-scc with positive = \"other-half\" needs sequences of at least 2 frames, got {t}",
                hint="lengthen the sequences (data.seq_len) or use positive = \"shuffled\"")
        h = t // 2
        first = _encoded(batch, out, model, (slice(None), slice(None, h)))  # each half on its own
        second = _encoded(batch, out, model, (slice(None), slice(h, None)))
        (a_mean, a_logvar), (p_mean, p_logvar) = model.static_posterior(first), model.static_posterior(second)
        if self.use_mean:
            return a_mean, p_mean
        return _sample(a_mean, a_logvar), _sample(p_mean, p_logvar)


@disentangle.hookimpl
def register_regularizers(register):
    register("triplet-scc", TripletSCC)
