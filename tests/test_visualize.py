"""Picture grids: frames of a row with the default gap, or side by side (``frame_gap = 0``)."""

import torch

from disentangle.visualize import sequence_grid


def rows(n=3, t=5, h=8, w=4):
    return [torch.rand(t, 3, h, w) * 0.5 for _ in range(n)]  # never white, so gaps are visible


def test_default_gap_between_frames_and_rows():
    grid = sequence_grid(rows(), pad=2)
    assert grid.shape == (3, 3 * (8 + 2) + 2, 5 * (4 + 2) + 2)
    assert torch.all(grid[:, 2:10, 6:8] == 1.0)  # the white column between frames 0 and 1 of row 0


def test_frame_gap_zero_makes_each_row_one_image():
    r = rows()
    grid = sequence_grid(r, pad=2, frame_gap=0)
    assert grid.shape == (3, 3 * (8 + 2) + 2, 5 * 4 + 2 * 2)
    # row 0 is its frames side by side, unchanged
    assert torch.equal(grid[:, 2:10, 2:22], torch.cat(list(r[0]), dim=-1))
