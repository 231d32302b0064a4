"""PNG grids of reconstructions, generations and z_f / z_1:T swaps (torchvision image grids)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from disentangle.interfaces import SequenceData
from disentangle.io import atomic_path
from disentangle.model import S3VAE


def sequence_grid(rows: list[torch.Tensor], pad: int = 2, frame_gap: int | None = None) -> torch.Tensor:
    """Stack image sequences ``(T, 3, H, W)`` as rows of one picture, ``pad`` white pixels around the
    rows and ``frame_gap`` (default ``pad``) between the frames of a row (0: a row is one image, e.g.
    a spectrogram)."""
    gap = pad if frame_gap is None else frame_gap
    joined = []
    for r in rows:
        r = r.clamp(0, 1).cpu()
        parts = [r[0]]
        for frame in r[1:]:
            parts += [torch.ones(*frame.shape[:-1], gap), frame]
        joined.append(torch.cat(parts, dim=-1))
    return make_grid(torch.stack(joined), nrow=1, padding=pad, pad_value=1.0)


def _save(grid: torch.Tensor, path: Path) -> Path:
    with atomic_path(path) as tmp:
        save_image(grid, tmp, format="png")
    return path


def shown_sequences(data: SequenceData, n: int, device: torch.device) -> torch.Tensor:
    """``n`` test sequences ``(n, T, *F)`` on ``device``, evenly spaced over the test split (a split
    stored in order, such as speech windows by file name, still shows different sources): what the
    pictures show (and the sounds of :mod:`disentangle.sounds` play); fewer when the split is smaller."""
    split = data.split("test")
    n = min(n, len(split))
    if n == 0:
        return torch.empty(0)
    return torch.stack([split[i]["x"] for i in shown_indices(len(split), n)]).to(device)


def shown_indices(size: int, n: int) -> list[int]:
    """The indices of :func:`shown_sequences`: ``n`` of ``range(size)``, evenly spaced, first one 0."""
    return [(i * size) // n for i in range(n)]


def swap_pairs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The swap's pairs among the shown sequences: pair ``i`` is ``(x[i], x[half + i])``."""
    half = len(x) // 2
    return x[:half], x[half: 2 * half]


@torch.no_grad()
def save_pictures(model: S3VAE, data: SequenceData, out_dir: Path, n: int, device: torch.device) -> list[Path]:
    """Write ``reconstruction.png`` (data row, reconstruction row, …), ``generation.png`` (sequences from
    the prior) and ``swap.png``: for each pair (a, b) the rows a, b, [z_f of a + z_1:T of b],
    [z_f of b + z_1:T of a], and ``fixed.png``: for each a, its row, two rows keeping its z_f (z_1:T
    from the prior) and two keeping its z_1:T (z_f from the prior). Nothing is written for data
    without a picture (``to_images`` is None)."""
    x = shown_sequences(data, n, device)
    n = len(x)
    if n == 0:
        return []
    if data.to_images(x[:1]) is None:
        return []
    written = []
    gap = getattr(data, "frame_gap", None)  # optional: pixels between the frames of a row (0: spectrograms)

    xi, recon = data.to_images(x), data.to_images(model.reconstruct(x))
    rows = [r for i in range(n) for r in (xi[i], recon[i])]
    written.append(_save(sequence_grid(rows, frame_gap=gap), out_dir / "reconstruction.png"))
    gen = data.to_images(model.generate(n, x.shape[1]))
    written.append(_save(sequence_grid(list(gen), frame_gap=gap), out_dir / "generation.png"))
    half = n // 2
    if half == 0:  # a single test sequence: nothing to swap with
        return written
    a, b = swap_pairs(x)
    ai, bi = xi[:half], xi[half: 2 * half]
    ab, ba = data.to_images(model.swap(a, b)), data.to_images(model.swap(b, a))
    rows = []
    for i in range(half):
        rows += [ai[i], bi[i], ab[i], ba[i]]
    written.append(_save(sequence_grid(rows, frame_gap=gap), out_dir / "swap.png"))
    written.append(_save(sequence_grid(fixed_factor_rows(model, data, x[:half]), frame_gap=gap),
                         out_dir / "fixed.png"))
    return written


@torch.no_grad()
def fixed_factor_rows(model: S3VAE, data: SequenceData, x: torch.Tensor, samples: int = 2,
                      seed: int = 0) -> list[torch.Tensor]:
    """For each sequence of ``x``: its row, ``samples`` rows keeping its z_f with z_1:T drawn from
    the prior, then ``samples`` rows keeping its z_1:T with z_f drawn from the prior (the paper's
    fixed-factor generation). Drawn from ``seed`` without touching the global random state."""
    f, z = model.encode(x)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        keep_f = data.to_images(model.generate(len(x) * samples, x.shape[1], f=f.repeat_interleave(samples, 0)))
        keep_z = data.to_images(model.generate(len(x) * samples, x.shape[1], z=z.repeat_interleave(samples, 0)))
    xi = data.to_images(x)
    rows = []
    for i in range(len(x)):
        rows += [xi[i], *keep_f[i * samples:(i + 1) * samples], *keep_z[i * samples:(i + 1) * samples]]
    return rows
