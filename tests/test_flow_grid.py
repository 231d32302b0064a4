"""The flow-grid auxiliary task plug-in (DFP from optical flow)."""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import flow_grid as fg
from disentangle_plugins.video import moving_shapes as ms

R = 32  # canvas side
SIDE = 6  # square side
T = 6


class SlidingSquares(disentangle.SequenceData):
    """A white square sliding across a black frame; each sequence has its own straight path.

    ``paths[i][t]`` is the square's top-left corner (row, col) in sequence i at frame t."""

    def __init__(self, paths: list[list[tuple[int, int]]], channels: int = 3, tag: str = "a"):
        self.paths = paths
        self.spec = disentangle.DataSpec(feature_shape=(channels, R, R), seq_len=len(paths[0]))
        x = torch.zeros(len(paths), len(paths[0]), channels, R, R)
        for i, path in enumerate(paths):
            for t, (r, c) in enumerate(path):
                x[i, t, :, r:r + SIDE, c:c + SIDE] = 1.0
        self.items = [{"x": x[i], "labels": {}} for i in range(len(paths))]
        self.tag = tag

    def split(self, name: str) -> Any:
        return self.items

    @property
    def fingerprint(self) -> str:
        return f"sliding-{self.tag}-{len(self.items)}"


def square_paths() -> list[list[tuple[int, int]]]:
    return [
        [(2, 1 + 5 * t) for t in range(T)],  # left to right along the top
        [(1 + 5 * t, 25) for t in range(T)],  # top to bottom along the right edge
        [(25 - 3 * t, 24 - 3 * t) for t in range(T)],  # diagonally up-left
        [(13, 26 - 5 * t) for t in range(T)],  # right to left through the middle
    ]


def cells_of(r: int, c: int, grid: int = 4) -> set[int]:
    """The grid cells that a square with top-left (r, c) overlaps."""
    cell = R // grid
    rows = range(r // cell, (r + SIDE - 1) // cell + 1)
    cols = range(c // cell, (c + SIDE - 1) // cell + 1)
    return {i * grid + j for i in rows for j in cols}


def make_task(tmp_path, data: disentangle.SequenceData | None = None, **kw) -> tuple[fg.FlowGrid, disentangle.BuildContext]:
    spec = data.spec if data is not None else disentangle.DataSpec((3, R, R), T)
    ctx = testing.tiny_context(tmp_path, feature_shape=spec.feature_shape, seq_len=spec.seq_len,
                               dataset_size=4, batch_size=4)
    return fg.FlowGrid(fg.FlowGrid.Config(**kw), ctx), ctx


@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("channels", [3, 1])
def test_labels_follow_the_square(tmp_path, method, channels):
    data = SlidingSquares(square_paths(), channels=channels)
    task, ctx = make_task(tmp_path, data, top_k=1, method=method)
    task.prepare(data, ctx)
    labels = task.labels
    assert labels.shape == (4, T, 16) and labels.dtype == torch.float32
    assert (labels.sum(-1) == 1).all()
    for i, path in enumerate(data.paths):
        for t in range(T):
            top = int(labels[i, t].argmax())
            # frame t's label lies where the square moves: where it is at t or just came from
            # (frame 0: where it is at 0 or goes to at 1)
            allowed = cells_of(*path[t]) | cells_of(*path[t - 1 if t > 0 else 1])
            assert top in allowed, f"sequence {i} frame {t}: top cell {top}, square in {sorted(allowed)}"


def test_top_k_labels_are_k_hot(tmp_path):
    data = SlidingSquares(square_paths())
    task, ctx = make_task(tmp_path, data, top_k=3)
    task.prepare(data, ctx)
    assert set(torch.unique(task.labels).tolist()) <= {0.0, 1.0}
    assert (task.labels.sum(-1) == 3).all()
    # the top-1 cells are among the top-3 cells
    top1, _ = make_task(tmp_path, data, top_k=1)
    top1.prepare(data, ctx)
    assert ((top1.labels * task.labels).sum(-1) == 1).all()


def test_sequence_labels_frame_convention():
    """Frame t uses the flow between t-1 and t; frame 0 the flow between 0 and 1."""
    gray = np.zeros((3, R, R), np.uint8)
    gray[:, 2:8, 2:8] = 255  # still in the top-left corner...
    gray[2, 2:8, 2:8] = 0
    gray[2, 24:30, 24:30] = 255  # ...then jumps to the bottom-right (only frame 2 differs)
    labels = fg.sequence_labels(gray, grid=4, top_k=1, method="dis")
    assert labels.shape == (3, 16) and labels.dtype == np.uint8
    assert labels[2].argmax() in {0, 15}  # the only motion is between frames 1 and 2
    assert labels[1].argmax() == labels[0].argmax()  # no motion: deterministic tie break


def test_cell_means():
    values = np.arange(36, dtype=float).reshape(6, 6)
    means = fg.cell_means(values, 2)
    np.testing.assert_allclose(means, [values[:3, :3].mean(), values[:3, 3:].mean(),
                                       values[3:, :3].mean(), values[3:, 3:].mean()])
    assert fg.cell_means(np.ones((7, 5)), 3).tolist() == [1.0] * 9  # uneven cells still average


def test_cached_once(tmp_path, monkeypatch):
    data = SlidingSquares(square_paths())
    task, ctx = make_task(tmp_path, data)
    task.prepare(data, ctx)
    key = disentangle.fingerprint(data.fingerprint, 4, 3, "dis")
    path = tmp_path / "flow-grid" / f"{key}.npy"
    assert path.exists() and task.cache_path == path
    assert np.load(path).shape == (4, T, 16)

    def boom(*args, **kwargs):
        raise AssertionError("optical flow recomputed despite the cache")

    monkeypatch.setattr(fg, "flow_magnitude", boom)
    again, _ = make_task(tmp_path, data)
    again.prepare(data, ctx)
    assert torch.equal(again.labels, task.labels)
    # another config or another dataset is another cache entry
    other, _ = make_task(tmp_path, data, top_k=2)
    with pytest.raises(AssertionError, match="recomputed"):
        other.prepare(data, ctx)
    with pytest.raises(AssertionError, match="recomputed"):
        again.prepare(SlidingSquares(square_paths(), tag="b"), ctx)


def test_objective_contract(tmp_path):
    data = ms.MovingShapes(ms.MovingShapes.Config(num_train=8, num_test=4, seq_len=6),
                           disentangle.BuildContext(cache_dir=tmp_path))
    task, ctx = make_task(tmp_path, data)
    loss = testing.check_objective(task, ctx, data)
    assert 0 < float(loss) < 2 * math.log(16)
    # and on the core's toy data (random noise frames)
    ctx16 = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16), seq_len=4, dataset_size=8)
    testing.check_objective(fg.FlowGrid(fg.FlowGrid.Config(grid=2, top_k=1), ctx16), ctx16)


def test_loss_value_and_state(tmp_path):
    data = SlidingSquares(square_paths())
    task, ctx = make_task(tmp_path, data)
    task.prepare(data, ctx)
    model = testing.tiny_model(ctx)
    batch = {"x": torch.stack([it["x"] for it in data.items]), "index": torch.tensor([3, 0]), "labels": {}}
    batch["x"] = batch["x"][batch["index"]]
    out = model(batch["x"])
    target = task.labels[batch["index"]]
    logp = torch.log_softmax(task.logits(out.z), -1)
    assert torch.isclose(task.loss(batch, out, model), -(target / 3 * logp).sum(-1).mean())
    with torch.no_grad():  # uniform predictions: cross-entropy to any distribution is log(cells)
        task.head[-1].weight.zero_()
        task.head[-1].bias.zero_()
    assert torch.isclose(task.loss(batch, out, model), torch.tensor(math.log(16)), atol=1e-5)
    # the labels stay out of checkpoints
    assert all("label" not in k for k in task.state_dict())
    assert set(task.state_dict()) == {"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"}


def test_loss_before_prepare(tmp_path):
    task, ctx = make_task(tmp_path)
    out = testing.tiny_model(ctx)(testing.random_batch(ctx)["x"])
    with pytest.raises(disentangle.DisentangleError, match="prepare"):
        task.loss(testing.random_batch(ctx), out, testing.tiny_model(ctx))


def test_rejects_non_images(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(80,), seq_len=4)
    with pytest.raises(disentangle.DisentangleError, match="image sequences"):
        fg.FlowGrid(fg.FlowGrid.Config(), ctx)
    task, img_ctx = make_task(tmp_path)
    with pytest.raises(disentangle.DisentangleError, match="image sequences"):
        task.prepare(testing.ToyData(ctx), img_ctx)
    ctx4 = testing.tiny_context(tmp_path, feature_shape=(4, 16, 16), seq_len=4)
    with pytest.raises(disentangle.DisentangleError, match="C = 1 or 3"):
        task.prepare(testing.ToyData(ctx4), img_ctx)


def test_config():
    testing.check_config_roundtrip(fg.FlowGrid.Config())
    testing.check_config_roundtrip(fg.FlowGrid.Config(grid=3, top_k=9, method="farneback", hidden=8))
    for bad in ({"top_k": 17}, {"top_k": 0}, {"grid": 2, "top_k": 5}, {"method": "lk"}, {"grid": 0}, {"hidden": 0}):
        with pytest.raises((ValueError, TypeError)):
            fg.FlowGrid.Config(**bad)
    assert attrs.has(fg.FlowGrid.Config)


def test_registered():
    comp = testing.check_registered(fg, "task", "flow-grid", fg.FlowGrid)
    assert comp.config is fg.FlowGrid.Config
    info = {p.name: p for p in disentangle.load_registry().plugins}["flow-grid"]
    assert info.components == {"task": ["flow-grid"]}

def test_threaded_labels_match_sequential(tmp_path):
    from disentangle_plugins.video.moving_shapes import MovingShapes

    data = MovingShapes(MovingShapes.Config(num_train=24, num_test=4), testing.tiny_context(tmp_path))
    one = fg.compute_labels(data, 4, 2, "dis", workers=1)
    two = fg.compute_labels(data, 4, 2, "dis", workers=3)
    assert one.shape == (24, 8, 16) and (one.sum(-1) == 2).all()
    assert (one == two).all()
