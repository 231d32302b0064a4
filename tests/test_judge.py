"""Judge classifiers and the paper's metrics (Acc, IS, H(y|x), H(y)): known answers on hand-made
probability tables, a judge trained on tiny moving-shapes that scores real data near its ceiling and
noise near chance, and the refusals (another data version, a missing file)."""

import math

import numpy as np
import pytest
import torch

import disentangle
from disentangle import EvalContext, testing
from disentangle_plugins.evaluation import judge as J
from disentangle_plugins.evaluation import judge_metrics as M
from disentangle_plugins.video.moving_shapes import MovingShapes, MovingShapesConfig


def test_scores_on_hand_made_tables():
    # one-hot and uniform over 4 classes: H(y|x) = 0, H(y) = log 4, IS = 4
    onehot = np.eye(4)
    s = M.scores(onehot)
    assert s["H(y|x)"] == pytest.approx(0.0, abs=1e-9)
    assert s["H(y)"] == pytest.approx(math.log(4))
    assert s["IS"] == pytest.approx(4.0)
    # every row the same: p(y|x) = p(y), so KL = 0 and IS = 1
    same = np.tile([[0.7, 0.2, 0.1]], (5, 1))
    s = M.scores(same)
    assert s["IS"] == pytest.approx(1.0)
    assert s["H(y|x)"] == pytest.approx(s["H(y)"]) == pytest.approx(-(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)))
    # two rows [1, 0] and [0.5, 0.5]: p(y) = [0.75, 0.25]
    table = np.array([[1.0, 0.0], [0.5, 0.5]])
    s = M.scores(table)
    hy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert s["H(y|x)"] == pytest.approx(math.log(2) / 2)
    assert s["H(y)"] == pytest.approx(hy)
    assert s["IS"] == pytest.approx(math.exp(hy - math.log(2) / 2))  # IS = exp(H(y) - H(y|x))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    ctx = disentangle.BuildContext(cache_dir=tmp_path_factory.mktemp("cache"), seed=0)
    return MovingShapes(MovingShapesConfig(num_train=400, num_test=128, seq_len=4, resolution=16), ctx)


@pytest.fixture(scope="module")
def trained(shapes, tmp_path_factory):
    torch.set_num_threads(1)  # tiny net: threads only contend on shared CPUs
    judge = J.train_judge(shapes, epochs=4, batch_size=32, lr=1e-2, width=8, hidden=32, dataset="moving-shapes")
    path = tmp_path_factory.mktemp("judge") / "judge.pt"
    J.save_judge(judge, path)
    return path


def test_judge_file_round_trip_and_ceiling(trained, shapes):
    judge = J.load_judge(trained, shapes)  # weights_only=True inside
    acc = judge.test_accuracy
    assert set(acc) == {"shape", "color", "size", "direction", "speed"}
    assert acc["color"] > 2 / 6 and acc["size"] > 0.7  # 6 and 2 classes: well above chance
    assert judge.info["fingerprint"] == shapes.fingerprint
    x = torch.stack([shapes.split("test")[i]["x"] for i in range(8)])
    again = J.load_judge(trained).probabilities(x)["color"]
    assert torch.allclose(again, judge.probabilities(x)["color"])


def test_real_data_scores_near_the_ceiling_and_noise_near_chance(trained, shapes):
    judge = J.load_judge(trained, shapes)
    ev = EvalContext(None, shapes, batch_size=64)
    real = M.judge_real(judge, ev.batches("test"))
    color_acc = float((real["color"].argmax(-1) == real["label:color"]).mean())
    assert color_acc == pytest.approx(judge.test_accuracy["color"], abs=1e-6)
    noise = [{"x": torch.rand(64, 4, 3, 16, 16, generator=torch.Generator().manual_seed(i)),
              "labels": {"color": torch.randint(6, (64,), generator=torch.Generator().manual_seed(10 + i))}}
             for i in range(2)]
    fake = M.judge_real(judge, noise)
    noise_acc = float((fake["color"].argmax(-1) == fake["label:color"]).mean())
    assert noise_acc < 0.35 < color_acc  # chance is 1/6


def test_metric_reports_mean_std_and_ceiling(trained, shapes, tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16), seq_len=4)
    model = testing.tiny_model(ctx)
    metric = M.JudgeMetric(M.JudgeMetric.Config(path=str(trained), rounds=2, max_sequences=32), ctx)
    out = metric.compute(EvalContext(model, shapes, batch_size=32))
    for key in ("static/color/Acc/mean", "static/color/Acc/std", "static/color/IS/mean", "static/color/H(y|x)/mean",
                "static/color/H(y)/mean", "static/color/ceiling", "dynamic/direction/Acc/mean", "static/acc/mean"):
        assert key in out, key
    assert 1.0 <= out["static/color/IS/mean"] <= 6.0 + 1e-6
    assert out["static/color/H(y)/mean"] <= math.log(6) + 1e-6


def test_a_judge_for_another_data_version_is_refused(trained, tmp_path):
    other = MovingShapes(MovingShapesConfig(num_train=600, num_test=128, seq_len=4, resolution=16, seed=1),
                         disentangle.BuildContext(cache_dir=tmp_path, seed=0))
    with pytest.raises(disentangle.DisentangleError, match="trained on data") as info:
        J.load_judge(trained, other)
    assert "disentangle judge train" in info.value.hint
    with pytest.raises(disentangle.DisentangleError, match="does not exist"):
        J.load_judge(tmp_path / "missing.pt")


def test_a_file_that_is_no_judge_is_named_with_the_way_to_make_one(tmp_path):
    garbage, tensor = tmp_path / "garbage.pt", tmp_path / "tensor.pt"
    garbage.write_text("not a judge")
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(disentangle.DisentangleError,
                       match="cannot read judge file .*garbage.pt: not tensors as torch.save writes") as info:
        J.load_judge(garbage)
    assert "weights_only" not in info.value.message and "disentangle judge train" in info.value.hint
    with pytest.raises(disentangle.DisentangleError, match="tensor.pt is not a judge file"):
        J.load_judge(tensor)


def test_a_judge_trained_on_more_training_sequences_of_the_same_data_is_taken(trained, shapes, tmp_path):
    """The judge was trained with num_train=400; data with 600 (or 200) training sequences has another
    fingerprint but the same test split (moving-shapes draws it from its own stream), so the judge's
    ceiling still holds and it is taken. Another test split (num_test, or a label changed) is refused."""
    def data(**kw):
        cfg = dict(num_train=400, num_test=128, seq_len=4, resolution=16) | kw
        return MovingShapes(MovingShapesConfig(**cfg), disentangle.BuildContext(cache_dir=tmp_path, seed=0))

    for n in (600, 200):
        other = data(num_train=n)
        assert other.fingerprint != shapes.fingerprint
        assert J.test_fingerprint(other) == J.load_judge(trained).info["test_fingerprint"]
        assert J.load_judge(trained, other).test_accuracy == J.load_judge(trained).test_accuracy
    with pytest.raises(disentangle.DisentangleError, match="test split differs"):
        J.load_judge(trained, data(num_test=100))

    class Relabelled:  # the same frames, one test label changed
        def __init__(self, inner):
            self.spec, self.fingerprint, self.inner = inner.spec, "relabelled", inner

        def split(self, name):
            items = [dict(self.inner.split(name)[i]) for i in range(len(self.inner.split(name)))]
            items[0] = {**items[0], "labels": {**items[0]["labels"], "shape": (items[0]["labels"]["shape"] + 1) % 3}}
            return items

    with pytest.raises(disentangle.DisentangleError, match="test split differs"):
        J.load_judge(trained, Relabelled(shapes))


def test_batch_norm_and_deeper_frame_encoder_round_trip(shapes, tmp_path):
    judge = J.train_judge(shapes, epochs=1, batch_size=32, width=4, hidden=8, norm="batch", pools=3)
    assert judge.info["norm"] == "batch" and judge.info["pools"] == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in judge.net.modules()) == 4
    J.save_judge(judge, tmp_path / "j.pt")
    x = torch.stack([shapes.split("test")[i]["x"] for i in range(4)])
    again = J.load_judge(tmp_path / "j.pt", shapes)
    torch.testing.assert_close(again.probabilities(x)["shape"], judge.probabilities(x)["shape"])
    with pytest.raises(disentangle.DisentangleError, match="judge norm 'layer'"):
        J.train_judge(shapes, epochs=1, norm="layer")


def test_a_judge_file_from_before_the_options_loads_with_their_defaults(trained, shapes, tmp_path):
    blob = torch.load(trained, weights_only=True)
    del blob["info"]["norm"], blob["info"]["pools"]
    torch.save(blob, tmp_path / "old.pt")
    judge = J.load_judge(tmp_path / "old.pt", shapes)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in judge.net.modules())


def test_judge_show_on_a_file_that_is_no_judge_prints_the_error_and_hint(tmp_path, monkeypatch, capsys):
    from disentangle import cli

    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a judge")
    monkeypatch.setattr("sys.argv", ["disentangle", "judge", "show", str(garbage)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 1 and "Traceback" not in err
    assert f"error: cannot read judge file {garbage}: not tensors as torch.save writes them" in err
    assert "hint: build one with `disentangle judge train RECIPE --out" in err and "whose [data] you" in err


def test_judge_train_on_a_device_that_is_not_there_is_an_error_before_any_work(tmp_path, monkeypatch, capsys):
    from disentangle import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(J, "_data_from_argument", lambda *a: pytest.fail("data built before the device check"))
    monkeypatch.setattr("sys.argv", ["disentangle", "judge", "train", "moving-shapes", "--device", "cuda",
                                     "--out", str(tmp_path / "j.pt")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 1 and "Traceback" not in err
    assert "error: device 'cuda' was asked for but no CUDA GPU is available" in err and "--device cpu" in err
    assert not (tmp_path / "j.pt").exists()


def test_judge_train_to_a_path_it_cannot_write_stops_before_training(tmp_path, monkeypatch, capsys):
    from disentangle import cli

    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(J, "_data_from_argument", lambda *a: pytest.fail("data built before the --out check"))
    monkeypatch.setattr("sys.argv", ["disentangle", "judge", "train", "moving-shapes",
                                     "--out", str(tmp_path / "a-file" / "j.pt")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = " ".join(capsys.readouterr().err.split())
    assert info.value.code == 1 and "Traceback" not in err
    assert f"error: {tmp_path / 'a-file'}" in err and "hint: check the path and its permissions" in err


def test_a_dataset_parameter_that_lost_its_quotes_is_an_error():
    with pytest.raises(disentangle.DisentangleError, match="not valid TOML"):
        J._data_from_argument("moving-shapes", ["shapes=[square, circle]"])
