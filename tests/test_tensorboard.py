"""train.tensorboard: the logged scalars as TensorBoard event files beside metrics.jsonl."""

import json
import tomllib

import pytest

import disentangle
from disentangle.recipe import apply_overrides, parse_recipe
from disentangle.training import CHECKPOINT, train
from toy_plugins import TOY_RECIPE, toy_registry


def recipe(*overrides, metrics=()):
    raw = apply_overrides(tomllib.loads(TOY_RECIPE), list(overrides))
    raw["eval"]["metrics"] = [{"use": m} for m in metrics]
    return parse_recipe(raw, registry=toy_registry(entry_points=bool(metrics)))


def logged(run_dir):
    """``{term: {step: value}}`` from metrics.jsonl."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        for k, v in row.items():
            if k not in ("step", "epoch"):
                out.setdefault(k, {})[row["step"]] = v
    return out


def board(run_dir):
    """``{tag: {step: value}}`` as TensorBoard reads ``run_dir/tensorboard`` (purged steps hidden)."""
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    ea = ea_mod.EventAccumulator(str(run_dir / "tensorboard"), size_guidance={ea_mod.SCALARS: 0})
    ea.Reload()
    out = {}
    for tag in ea.Tags()["scalars"]:
        for event in ea.Scalars(tag):
            assert event.step not in out.setdefault(tag, {}), f"{tag}: step {event.step} twice"
            out[tag][event.step] = event.value
    return out


def test_event_files_hold_the_metrics_jsonl_values(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    train(recipe("train.tensorboard=true", "train.log_every=5", metrics=["reconstruction"]), run,
          registry=toy_registry(entry_points=True))
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    jsonl, tb = logged(run), board(run)
    assert {"loss", "recon", "kl_f", "kl_z", "z-norm", "grad_norm"} <= set(jsonl)
    for term, values in jsonl.items():
        assert sorted(tb[f"train/{term}"]) == sorted(values) == list(range(1, 13))
        for step, value in values.items():
            assert tb[f"train/{term}"][step] == pytest.approx(value, rel=1e-6), (term, step)
    results = json.loads((run / "eval.json").read_text())["reconstruction"]
    assert results
    for key, value in results.items():
        assert tb[f"eval/reconstruction/{key}"] == {12: pytest.approx(value, rel=1e-6)}


def test_resume_hides_the_redone_steps(tmp_path):
    """A run resumed from an older checkpoint redoes steps: TensorBoard shows each step once, with
    the values metrics.jsonl keeps."""
    pytest.importorskip("tensorboard")
    reg, run = toy_registry(), tmp_path / "run"
    on = "train.tensorboard=true"
    train(recipe(on, "train.max_steps=4", "train.checkpoint_every=4"), run, registry=reg)
    at_4 = (run / CHECKPOINT).read_bytes()
    train(recipe(on, "train.max_steps=6", "train.checkpoint_every=4"), run, resume=True, registry=reg)
    (run / CHECKPOINT).write_bytes(at_4)  # as if killed after logging steps 5-6 but before their checkpoint
    assert sorted(logged(run)["loss"]) == list(range(1, 7)) and 6 in board(run)["train/loss"]
    train(recipe(on), run, resume=True, registry=reg)
    jsonl, tb = logged(run), board(run)
    assert sorted(jsonl["loss"]) == sorted(tb["train/loss"]) == list(range(1, 13))
    for step, value in jsonl["loss"].items():
        assert tb["train/loss"][step] == pytest.approx(value, rel=1e-6)


def test_missing_tensorboard_is_a_clear_error_before_training(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed: importing it fails
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    with pytest.raises(disentangle.DisentangleError, match="train.tensorboard = true") as err:
        train(recipe("train.tensorboard=true"), tmp_path / "run", registry=toy_registry())
    assert "not installed" in err.value.message and 'disentangle[tensorboard]' in err.value.hint
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
