"""Run-directory safety: one writer per run (lock), signals, damaged checkpoints, leftovers, modes."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from disentangle.cli import app

runner = CliRunner()


def said(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())

FAST = """
[data]
use = "moving-shapes"
num_train = 32
num_test = 8
resolution = 32
[model]
z_f_dim = 4
z_t_dim = 2
hidden_dim = 8
[model.encoder]
use = "conv"
channels = [4, 4, 4]
out_dim = 8
[model.decoder]
use = "conv"
channels = [4, 4, 4]
[train]
epochs = 1
batch_size = 8
checkpoint_every = 2
device = "cpu"
[eval]
images = false
"""


@pytest.fixture
def fast(tmp_path):
    path = tmp_path / "fast.toml"
    path.write_text(FAST)
    return path


def _hold_lock(run_dir: Path) -> subprocess.Popen:
    code = ("import sys, time; from pathlib import Path; from disentangle.training.lock import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_names_the_holder(fast, tmp_path):
    run_dir = tmp_path / "run"
    holder = _hold_lock(run_dir)
    try:
        for args in (["run", str(fast), "--run-dir", str(run_dir)], ["run", "--resume", str(run_dir)]):
            if args[1] == "--resume":
                (run_dir / "recipe.toml").write_text(FAST)
            result = runner.invoke(app, args)
            assert result.exit_code == 1, result.output
            assert f"in use by process {holder.pid}" in said(result)
        assert not (run_dir / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()
    (run_dir / "recipe.toml").unlink()
    # the holder died without releasing: its lock file is left and taken over with a message
    assert (run_dir / ".lock").exists()
    result = runner.invoke(app, ["run", str(fast), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert f"took over the lock of {run_dir} left by process {holder.pid}" in said(result)
    assert not (run_dir / ".lock").exists()  # released on exit


def test_a_failed_run_leaves_no_empty_run_directory(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(FAST.replace("num_train = 32", "num_train = 4"))  # fewer sequences than a batch
    result = runner.invoke(app, ["run", str(bad), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert not (tmp_path / "run").exists()


def test_readers_use_the_recipe_stored_with_the_checkpoint(fast, tmp_path):
    from disentangle.training import load_run

    run_dir = tmp_path / "run"
    assert runner.invoke(app, ["run", str(fast), "--run-dir", str(run_dir)]).exit_code == 0
    # a writer replacing recipe.toml (another model size) must not pair it with these weights
    text = (run_dir / "recipe.toml").read_text()
    (run_dir / "recipe.toml").write_text(text.replace("z_f_dim = 4", "z_f_dim = 6"))
    pipe = load_run(run_dir, "cpu")
    assert pipe.recipe.model.z_f_dim == 4


def _start(args, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "disentangle", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(cond, proc, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None and not cond():
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()


def test_sigterm_stops_at_a_step_boundary_with_a_checkpoint(fast, tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(["run", str(fast), "--run-dir", str(run_dir), "--set", "train.epochs=200",
                   "--set", "train.checkpoint_every=1000", "--set", "train.log_every=1000"], tmp_path)
    metrics = run_dir / "metrics.jsonl"
    _wait_for(lambda: (run_dir / "environment.json").exists(), proc)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    said_ = " ".join(stderr.split())
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM at step" in said_ and f"disentangle run --resume {run_dir}" in said_
    step = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"]
    logged = [int(line.split('"step": ')[1].split(",")[0]) for line in metrics.read_text().splitlines()]
    assert step >= 1 and logged == list(range(1, step + 1))  # the log was flushed up to the checkpoint
    assert not (run_dir / ".lock").exists()


def test_a_signal_before_the_first_checkpoint_says_to_start_again(fast, tmp_path, monkeypatch):
    """Outside the loop (e.g. while the dataset is built) a signal interrupts at once; with no
    checkpoint yet, --resume would fail, so the message says how to start again."""
    import disentangle.training as training
    from disentangle.training.stop import StopRequest

    stop = StopRequest()
    with pytest.raises(KeyboardInterrupt):  # not armed: interrupt now
        stop._handle(signal.SIGTERM, None)
    stop = StopRequest()
    stop.armed = True
    stop._handle(signal.SIGTERM, None)  # armed: only asks the loop to stop
    assert stop.requested and stop.name == "SIGTERM"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("SIGTERM")

    monkeypatch.setattr(training, "train", interrupted)
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["run", str(fast), "--run-dir", str(run_dir)])
    assert result.exit_code == 143
    assert "before the first checkpoint" in said(result) and "--resume" not in said(result)
    assert f"disentangle run {fast} --run-dir {run_dir}" in said(result)


@pytest.mark.parametrize("content, message", [
    (torch.zeros(3), "it holds a Tensor, not a dict with format, step"),
    ({"format": 1, "step": 3, "total_steps": 4, "objectives": {}, "optimizer": {}}, "missing model, rng"),
    ({"format": 1, "step": 3, "total_steps": 4, "model": [], "objectives": {}, "optimizer": {}, "rng": {}},
     "model has the wrong type"),
    (None, "the file is empty (0 bytes)"),
    (b"not a checkpoint", "cannot read checkpoint"),
])
def test_a_damaged_checkpoint_names_what_is_wrong(tmp_path, content, message):
    from disentangle import DisentangleError
    from disentangle.training.state import load_checkpoint

    path = tmp_path / "last.pt"
    if content is None:
        path.write_bytes(b"")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(DisentangleError) as info:
        load_checkpoint(path)
    assert str(path) in info.value.message and message in info.value.message
    assert "weights_only" not in info.value.message


def test_a_state_dict_mismatch_names_the_first_keys(tmp_path):
    from disentangle import DisentangleError
    from disentangle.training.state import load_state

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    other = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2), torch.nn.Linear(2, 2))
    with pytest.raises(DisentangleError) as info:
        load_state(model, other.state_dict(), "model", tmp_path / "last.pt")
    msg = info.value.message
    assert "unexpected 2.weight, 2.bias" in msg
    assert "0.weight (5, 3) vs (4, 3)" in msg


@pytest.mark.parametrize("flag", ["--run-dir", "--resume"])
def test_an_empty_run_dir_is_an_error(fast, flag):
    result = runner.invoke(app, ["run", str(fast), flag, ""])
    assert result.exit_code == 1 and f"{flag} is empty" in said(result)


def test_an_unwritable_run_dir_or_cache_is_named_before_anything_is_built(fast, tmp_path, monkeypatch):
    import disentangle.training.loop as loop

    def no_build(*args, **kwargs):
        raise AssertionError("the dataset was built before the run dir / cache were checked")

    monkeypatch.setattr(loop, "build_pipeline", no_build)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    result = runner.invoke(app, ["run", str(fast), "--run-dir", str(a_file / "run")])
    assert result.exit_code == 1 and f"cannot create run directory {a_file / 'run'}" in said(result)
    monkeypatch.setenv("DISENTANGLE_CACHE_DIR", str(a_file / "cache"))
    result = runner.invoke(app, ["run", str(fast), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 1 and f"cannot create the cache folder {a_file / 'cache'}" in said(result)
    assert not (tmp_path / "run").exists()


def test_a_huge_invalid_set_value_is_not_echoed_in_full(fast):
    result = runner.invoke(app, ["validate", str(fast), "--set", "train.device=" + "a" * 100_000])
    assert result.exit_code == 2 and "train.device" in result.output
    assert len(result.output) < 2000 and "(100002 characters)" in said(result)


def test_an_unwritable_checkpoint_folder_names_last_pt(tmp_path, monkeypatch, capsys):
    import tempfile

    from disentangle.cli import print_error
    from disentangle.io import atomic_torch_save

    def denied(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "abc" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    target = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(OSError) as info:
        atomic_torch_save({"a": 1}, target)
    assert info.value.filename == str(target)
    print_error(info.value)  # what the CLI prints: the file meant, not a hidden temporary file
    printed = " ".join(capsys.readouterr().err.split())
    assert f"{target}: cannot write last.pt here: Permission denied" in printed and ".tmp" not in printed
