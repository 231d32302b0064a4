"""disentangle.PseudoLabelTask: labels computed once and cached, a head on z_t, three loss kinds, NaN masks."""

from __future__ import annotations

import math

import attrs
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import disentangle
from disentangle import testing

N, T, W = 6, 4, 3


@attrs.frozen
class Config:
    hidden: int = 8
    offset: float = 0.0


def fixed_labels(kind: str, width: int | None) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (N, T) + ((width,) if width else ())
    if kind == "cross-entropy":
        return (rng.random(shape) < 0.5).astype(np.uint8)
    if kind == "binary":
        return (rng.random(shape) < 0.5).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


def make_class(kind: str, width: int | None, labels: np.ndarray | None = None):
    class Fixed(disentangle.PseudoLabelTask):
        name = f"fixed-{kind}"
        loss_kind = kind
        calls = 0

        def __init__(self, config, ctx):
            super().__init__(config, ctx, width=width, hidden=config.hidden)

        def compute_labels(self, data):
            type(self).calls += 1
            return fixed_labels(kind, width) if labels is None else labels

        def cache_params(self):
            return (self.config.offset,)

    return Fixed


def setup(tmp_path, kind="regression", width=W, labels=None, **config):
    ctx = testing.tiny_context(tmp_path, seq_len=T, dataset_size=N, batch_size=4)
    cls = make_class(kind, width, labels)
    return cls, cls(Config(**config), ctx), ctx, testing.ToyData(ctx, n_train=N)


@pytest.mark.parametrize("kind, width", [("cross-entropy", W), ("binary", W), ("binary", None),
                                         ("regression", W), ("regression", None)])
def test_contract_and_loss_value(tmp_path, kind, width):
    cls, task, ctx, data = setup(tmp_path, kind, width)
    testing.check_objective(task, ctx, data)
    assert task.labels.shape == (N, T) + ((width,) if width else ()) and task.labels.dtype == torch.float32
    assert set(task.state_dict()) == {"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"}
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    batch["index"] = torch.tensor([5, 0, 2, 2])
    out = model(batch["x"])
    pred = task.predict(out.z)
    assert pred.shape == (4, T) + ((width,) if width else ())
    target = torch.from_numpy(fixed_labels(kind, width)).float()[batch["index"]]
    if kind == "cross-entropy":
        want = -(target / target.sum(-1, keepdim=True).clamp_min(1) * F.log_softmax(pred, -1)).sum(-1).mean()
    elif kind == "binary":
        want = F.binary_cross_entropy_with_logits(pred, target)
    else:
        want = F.mse_loss(pred, target)
    assert torch.allclose(task.loss(batch, out, model), want)


def test_cached_once_keyed_by_data_name_version_and_params(tmp_path):
    cls, task, ctx, data = setup(tmp_path)
    task.prepare(data, ctx)
    key = disentangle.fingerprint(data.fingerprint, "fixed-regression", 1, 0.0)
    assert task.cache_path == tmp_path / "fixed-regression" / f"{key}.npy" and task.cache_path.is_file()
    again = cls(Config(), ctx)
    again.prepare(data, ctx)
    assert cls.calls == 1 and torch.equal(again.labels, task.labels)
    cls(Config(offset=1.0), ctx).prepare(data, ctx)  # another parameter: another cache entry
    assert cls.calls == 2
    cls.labels_version = 2  # a new version of the labels: another cache entry
    cls(Config(), ctx).prepare(data, ctx)
    assert cls.calls == 3


def test_stale_cache_names_the_file(tmp_path, capsys):
    from disentangle.io import save_array

    cls, task, ctx, data = setup(tmp_path)
    path = task.cache_file(data, ctx)
    disentangle.atomic_save_npy(np.zeros((N + 1, T, W), np.float32), path)  # no record: rebuilt
    task.prepare(data, ctx)
    assert f"cache {path} has no record" in " ".join(capsys.readouterr().err.split())
    save_array(np.zeros((N + 1, T, W), np.float32), path, task.cache_key(data))  # recorded, wrong shape
    with pytest.raises(disentangle.DisentangleError, match="disentangle cache clear") as info:
        task.prepare(data, ctx)
    assert str(path) in info.value.message and "(7, 4, 3)" in info.value.message


def test_wrong_shape_from_compute_labels(tmp_path):
    cls, task, ctx, data = setup(tmp_path, labels=np.zeros((N, T), np.float32))  # width 3 expected
    with pytest.raises(disentangle.DisentangleError, match=r"expected \(6, 4, 3\)"):
        task.prepare(data, ctx)


def test_nan_regression_labels_are_masked(tmp_path):
    labels = fixed_labels("regression", W)
    labels[0] = np.nan  # sequence 0: no labels at all
    labels[1, 2, 1] = np.nan
    cls, task, ctx, data = setup(tmp_path, labels=labels)
    task.prepare(data, ctx)
    assert task.labelled_fraction == pytest.approx(1 - (T * W + 1) / (N * T * W))
    model = testing.tiny_model(ctx)
    x = torch.stack([data.split("train")[i]["x"] for i in (0, 1)])
    out = model(x)
    batch = {"x": x, "index": torch.tensor([0, 1]), "labels": {}}
    loss = task.loss(batch, out, model)
    pred = task.predict(out.z)
    valid = torch.isfinite(torch.from_numpy(labels[[0, 1]]))
    want = ((pred - torch.from_numpy(labels[[0, 1]])) ** 2)[valid].mean()
    assert torch.isfinite(loss) and torch.allclose(loss, want)
    only0 = {"x": x[:1], "index": torch.tensor([0]), "labels": {}}  # nothing labelled: zero, not NaN
    out0 = model(x[:1])
    loss0 = task.loss(only0, out0, model)
    assert float(loss0.detach()) == 0.0
    loss0.backward()  # and its gradient is finite
    assert all(torch.isfinite(p.grad).all() for p in task.parameters() if p.grad is not None)


def test_nan_frames_in_cross_entropy_are_masked(tmp_path):
    labels = fixed_labels("cross-entropy", W).astype(np.float32)
    labels[:, 0] = np.nan  # frame 0 unlabelled everywhere
    cls, task, ctx, data = setup(tmp_path, "cross-entropy", W, labels=labels)
    task.prepare(data, ctx)
    assert task.labelled_fraction == pytest.approx((T - 1) / T)
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    pred, target = task.predict(out.z)[:, 1:], torch.from_numpy(labels)[batch["index"]][:, 1:]
    want = -(target / target.sum(-1, keepdim=True).clamp_min(1) * F.log_softmax(pred, -1)).sum(-1).mean()
    assert torch.allclose(task.loss(batch, out, model), want)


def test_labels_move_to_the_device_once(tmp_path, monkeypatch):
    cls, task, ctx, data = setup(tmp_path)
    task.prepare(data, ctx)
    moved = []
    real = torch.Tensor.to

    class Labels(torch.Tensor):
        pass

    task.labels = task.labels.as_subclass(Labels)
    monkeypatch.setattr(Labels, "device", property(lambda self: torch.device("meta")), raising=False)
    monkeypatch.setattr(Labels, "to", lambda self, *a, **k: moved.append(a) or real(self, *a, **k).as_subclass(torch.Tensor))
    model = testing.tiny_model(ctx)
    batch = testing.random_batch(ctx)
    out = model(batch["x"])
    task.loss(batch, out, model)
    task.loss(batch, out, model)
    assert len(moved) == 1 and type(task.labels) is torch.Tensor


def test_subclass_mistakes_are_clear(tmp_path):
    ctx = testing.tiny_context(tmp_path)

    class Nameless(disentangle.PseudoLabelTask):
        pass

    with pytest.raises(disentangle.DisentangleError, match="sets no `name`"):
        Nameless(Config(), ctx, width=2, hidden=4)
    with pytest.raises(disentangle.DisentangleError, match="width >= 2"):
        make_class("cross-entropy", None)(Config(), ctx)
    with pytest.raises(disentangle.DisentangleError, match="unknown loss_kind"):
        make_class("hinge", 2)(Config(), ctx)
    task = make_class("regression", 2)(Config(), ctx)
    with pytest.raises(disentangle.DisentangleError, match="prepare"):
        task.loss(testing.random_batch(ctx), testing.tiny_model(ctx)(testing.random_batch(ctx)["x"]), None)


def test_label_sequences_threads_keep_order_and_empty_split_is_clear(tmp_path):
    ctx = testing.tiny_context(tmp_path)
    data = testing.ToyData(ctx, n_train=7)

    def label(i, item):
        return np.full(2, i, np.int32) + np.int32(item["x"].sum() > 1e9)

    one = disentangle.label_sequences(data, label, "toy", workers=1)
    three = disentangle.label_sequences(data, label, "toy", workers=3, dtype=np.int64)
    assert one.shape == (7, 2) and one.dtype == np.int32 and three.dtype == np.int64
    assert (one[:, 0] == np.arange(7)).all() and (one == three).all()
    with pytest.raises(disentangle.DisentangleError, match="toy: the train split is empty"):
        disentangle.label_sequences(testing.ToyData(ctx, n_train=0), label, "toy")


def test_the_documented_example_works(tmp_path):
    """The `Volume` example of docs/plugins.md section 7 runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.+?)\n```", text, flags=re.S) if "class Volume(" in b)
    namespace: dict = {}
    exec(compile(block, "docs/plugins.md", "exec"), namespace)
    ctx = testing.tiny_context(tmp_path, dataset_size=8)
    task = namespace["Volume"](namespace["VolumeConfig"](), ctx)
    testing.check_objective(task, ctx)
    assert task.labels.shape == (8, ctx.data.seq_len) and task.cache_path.parent.name == "volume"
    testing.check_registered(type("plugin", (), {"register_tasks": staticmethod(namespace["register_tasks"])}),
                             "task", "volume", namespace["Volume"])
