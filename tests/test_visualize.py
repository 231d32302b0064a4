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


def test_fixed_factor_rows_keep_one_code_and_draw_the_other(tmp_path):
    from disentangle import testing
    from disentangle.visualize import fixed_factor_rows

    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 8, 8), seq_len=3)
    data, model = testing.ToyData(ctx), testing.tiny_model(ctx).eval()
    data.to_images = lambda x: x.clamp(0, 1)  # ToyData's frames are already pictures
    x = torch.stack([data.split("test")[i]["x"] for i in range(2)])
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    rows = fixed_factor_rows(model, data, x, samples=2, seed=5)
    assert torch.equal(torch.rand(1), before), "the global random state must not move"
    assert len(rows) == 2 * (1 + 2 + 2) and all(r.shape == (3, 3, 8, 8) for r in rows)
    assert torch.equal(rows[0], x[0]) and torch.equal(rows[5], x[1])
    again = fixed_factor_rows(model, data, x, samples=2, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(rows, again))
    # keeping z_f: the same z_f, two prior draws of z_1:T, so the two rows differ
    assert not torch.equal(rows[1], rows[2]) and not torch.equal(rows[3], rows[4])
