"""The command line: validate, list-plugins, run (incl. kill + resume in a subprocess), sample."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from disentangle.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

TINY = """
[data]
use = "moving-shapes"
num_train = 64
num_test = 16
resolution = 32
[model]
z_f_dim = 8
z_t_dim = 4
hidden_dim = 16
[model.encoder]
use = "conv"
channels = [8, 8, 8]
out_dim = 16
[model.decoder]
use = "conv"
channels = [8, 8, 8]
[[tasks]]
use = "flow-grid"
weight = 1.0
[[regularizers]]
use = "triplet-scc"
[[regularizers]]
use = "mi-mws"
weight = 0.5
[train]
epochs = 1
batch_size = 8
checkpoint_every = 2
device = "cpu"
[eval]
num_images = 4
[[eval.metrics]]
use = "latent-probe"
max_sequences = 16
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_validate_ok(tiny):
    result = runner.invoke(app, ["validate", str(tiny)])
    assert result.exit_code == 0 and "ok" in result.output


def test_validate_reports_every_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace('use = "flow-grid"', 'use = "flow-gird"').replace("epochs = 1", "epoch = 1")
                   .replace("z_t_dim = 4", "z_t_dim = 4.5").replace("hidden_dim = 16", "hiden_dim = 16"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "4 errors" in text
    for expected in ("tasks.0.use", "did you mean 'flow-grid'", "train.epoch", "did you mean 'epochs'",
                     "model.z_t_dim", "model.hiden_dim", "did you mean 'hidden_dim'"):
        assert expected in text, expected
    assert "Traceback" not in result.output


def test_set_overrides_are_validated(tiny):
    result = runner.invoke(app, ["validate", str(tiny), "--set", "train.lr=-3"])
    assert result.exit_code == 2 and "'lr' must be > 0" in result.output


def test_list_plugins_table_and_json():
    table = runner.invoke(app, ["list-plugins"])
    assert table.exit_code == 0
    for name in ("conv", "flow-grid", "triplet-scc", "mi-mws", "moving-shapes", "sprites"):
        assert name in table.output
    data = json.loads(runner.invoke(app, ["list-plugins", "--json"]).stdout)
    conv = next(p for p in data["plugins"] if p["name"] == "conv")
    assert conv["components"] == {"encoder": ["conv"], "decoder": ["conv"]} and conv["status"] == "ok"


def test_run_then_sample(tiny, tmp_path):
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tiny), "--run-dir", str(run_dir), "--set", "train.max_steps=3"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "images" / "swap.png").exists()
    assert "latent-probe" in json.loads((run_dir / "eval.json").read_text())
    assert "data:image/png;base64," in (run_dir / "report.html").read_text()
    out = tmp_path / "samples.npz"
    result = runner.invoke(app, ["sample", str(run_dir), "--keep", "dynamic", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    arrays = np.load(out)
    assert arrays["sequences"].dtype == np.uint8 and arrays["sequences"].shape == (16, 8, 32, 32, 3)
    assert {"labels_shape", "labels_direction"} <= set(arrays.files)


def test_run_bad_data_root_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["run", str(ROOT / "recipes" / "sprites.toml"), "--set",
                                 f"data.root={tmp_path / 'missing'}", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert "missing" in result.output and "Traceback" not in result.output


def test_sample_on_a_non_run_directory(tmp_path):
    result = runner.invoke(app, ["sample", str(tmp_path)])
    assert result.exit_code == 1 and "not a run directory" in result.output


def test_killed_run_resumes_to_the_same_step_count(tiny, tmp_path):
    """A subprocess killed mid-run continues from its last checkpoint and ends at the planned step."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # one thread: conftest's _threads
    cmd = [sys.executable, "-m", "disentangle", "run", str(tiny), "--run-dir", str(run_dir),
           "--set", "train.epochs=20", "--set", "train.checkpoint_every=3"]  # 20 x 64 // 8 = 160 steps
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(ckpt, weights_only=True)["step"]
    assert 6 <= killed_at < 160
    resumed = subprocess.run([sys.executable, "-m", "disentangle", "run", "--resume", str(run_dir)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    final = torch.load(ckpt, weights_only=True)
    assert final["step"] == 160
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 161))  # nothing repeated, nothing skipped


@pytest.mark.parametrize("args, message", [
    (["run", "{bad_utf8}"], "not UTF-8"),
    (["run", "{tiny}", "--run-dir", "{a_file}"], "is a file"),
    (["run", "{tiny}", "--device", "mps"], "mps"),
    (["run", "{tiny}", "--set", "train.seed=100000000000000"], "train.seed"),
    (["validate", "{tiny}", "--set", "tasks.0.weight=nan"], "tasks.0.weight"),
    (["validate", "{tiny}", "--set", "train.lr=inf"], "train.lr"),
    (["sample", "{tmp}", "--device", "foo"], "not a run directory"),
])
def test_bad_input_gives_a_message_not_a_traceback(tmp_path, tiny, args, message):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[data]")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    args = [a.format(bad_utf8=bad, tiny=tiny, a_file=a_file, tmp=tmp_path) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code in (1, 2), result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_absurd_learning_rate_is_a_message_and_never_checkpoints_non_finite_weights(tiny, tmp_path):
    """A step that cannot be taken (the update overflows float32) or whose loss goes non-finite
    is refused before it is saved."""
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["run", str(tiny), "--run-dir", str(run_dir), "--set", "train.lr=1e39",
                                 "--set", "train.checkpoint_every=1", "--set", "train.max_steps=4"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "optimizer update" in result.output or "non-finite" in result.output
    ckpt = run_dir / "checkpoints" / "last.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def _plugin_app(*plugins):
    from disentangle.cli import build_app
    from disentangle.registry import load_registry

    return build_app(load_registry(entry_points=False, extra=list(plugins)))


def test_plugin_adds_a_command_that_runs():
    from toy_plugins import CommandPlugin

    cli = _plugin_app(("hello", CommandPlugin()))
    result = runner.invoke(cli, ["toy-hello", "--name", "you", "--loud"])
    assert result.exit_code == 0, result.output
    assert "HELLO YOU FROM A PLUG-IN" in result.output
    assert "toy-hello" in runner.invoke(cli, ["--help"]).output
    assert "toy-hello" not in runner.invoke(app, ["--help"]).output  # the core app is left alone


def test_broken_or_shadowing_command_plugins_are_reported_not_fatal():
    from toy_plugins import BrokenCommandPlugin, CommandPlugin, ShadowingCommandPlugin

    cli = _plugin_app(("broken", BrokenCommandPlugin()), ("shadow", ShadowingCommandPlugin()),
                      ("hello", CommandPlugin()))
    from disentangle.cli import _command_name

    names = [_command_name(c) for c in cli.registered_commands]
    assert "half-added" not in names and names.count("run") == 1 and "toy-hello" in names
    assert runner.invoke(cli, ["toy-hello"]).exit_code == 0
    result = runner.invoke(cli, ["run", "--help"])
    assert result.exit_code == 0 and "Validate a recipe" in result.output


def test_broken_command_plugin_warns_on_stderr(capsys):
    from toy_plugins import BrokenCommandPlugin

    _plugin_app(("broken", BrokenCommandPlugin()))
    err = capsys.readouterr().err
    assert "plug-in 'broken'" in err and "commands broke" in err


@pytest.mark.parametrize("command", [[], ["run"], ["list-plugins"], ["validate"], ["describe"]])
def test_help_shows_no_type_for_flags(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "--help" in result.output


def test_describe_shows_parameters_with_docstrings():
    result = runner.invoke(app, ["describe", "flow-grid"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for expected in ("task 'flow-grid'", "plug-in 'flow-grid'", "[[tasks]]", "weight",
                     "top_k", "Cells per side", "farneback", "Predict the top-k"):
        assert expected in text, expected


def test_describe_an_ambiguous_name_shows_every_kind():
    result = runner.invoke(app, ["describe", "conv"], terminal_width=200)
    assert result.exit_code == 0
    assert "encoder 'conv'" in result.output and "decoder 'conv'" in result.output
    assert "likelihood" in result.output  # a decoder parameter


def test_describe_unknown_name_suggests():
    result = runner.invoke(app, ["describe", "flow-gird"])
    assert result.exit_code == 1 and "did you mean 'flow-grid'" in result.output


def test_list_plugins_check_fails_on_a_conflict(monkeypatch):
    import disentangle.registry as registry_module
    from toy_plugins import ToyPlugin

    ok = runner.invoke(app, ["list-plugins", "--check"])
    assert ok.exit_code == 0, ok.output
    reg = registry_module.load_registry(entry_points=False, extra=[("toy", ToyPlugin()), ("toy-copy", ToyPlugin())])
    monkeypatch.setattr(registry_module, "_DEFAULT", reg)
    result = runner.invoke(app, ["list-plugins", "--check"], terminal_width=300)
    assert result.exit_code == 1
    assert "conflict" in result.output and "toy-copy" in result.output
    data = json.loads(runner.invoke(app, ["list-plugins", "--json"]).stdout)
    assert {p["status"] for p in data["plugins"]} == {"conflict"}


def test_recipe_naming_a_disabled_plugins_component_says_so(tiny, monkeypatch):
    import disentangle.registry as registry_module

    monkeypatch.setenv("DISENTANGLE_DISABLE_PLUGINS", "flow-grid")
    monkeypatch.setattr(registry_module, "_DEFAULT", None)
    result = runner.invoke(app, ["validate", str(tiny)], terminal_width=300)
    monkeypatch.setattr(registry_module, "_DEFAULT", None)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "unknown task 'flow-grid'" in text and "disabled by DISENTANGLE_DISABLE_PLUGINS" in text
