"""Files: modes follow the umask, killed writers' temporary files are removed, errors name the file."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from disentangle.io import atomic_path, atomic_write_text, prepare_cache_dir, remove_stale_temps


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text("x", tmp_path / "a.txt")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == mode


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_files_of_dead_writers_are_removed(tmp_path):
    host = "".join(c if c.isalnum() or c in "_-" else "_" for c in socket.gethostname())
    dead = tmp_path / "checkpoints" / f".last.pt.w{host}-{_dead_pid()}-ab12_x.tmp"
    alive = tmp_path / f".recipe.toml.w{host}-{os.getppid()}-cd34.tmp"
    old = tmp_path / ".x.npy.abcdefgh.tmp"  # an untagged one, from an older version
    for f in (dead, alive, old):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"partial")
    os.utime(old, (1, 1))
    said = []
    assert sorted(remove_stale_temps(tmp_path, said.append)) == sorted([dead, old])
    assert alive.exists() and any(str(dead) in m for m in said)


def test_a_run_and_the_cache_remove_leftovers_and_are_checked_first(tmp_path):
    from disentangle import DisentangleError
    from disentangle.training.lock import run_lock

    host = "".join(c if c.isalnum() or c in "_-" else "_" for c in socket.gethostname())
    leftover = tmp_path / "run" / "checkpoints" / f".last.pt.w{host}-{_dead_pid()}-zz.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"x" * 100)
    cached = tmp_path / "cache" / "sprites-k" / f".train_x.npy.w{host}-{_dead_pid()}-yy.tmp"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    with run_lock(tmp_path / "run", say=lambda m: None):
        assert not leftover.exists()
    prepare_cache_dir(tmp_path / "cache")
    assert not cached.exists()
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(DisentangleError, match=f"cache folder {ro} is not writable"):
            prepare_cache_dir(ro)


class _NotATensor:
    pass


def _write_unreadable(path: Path, kind: str) -> None:
    import pickle

    import torch

    if kind == "text":
        path.write_text("not a tensor file\n")
    elif kind == "truncated":
        torch.save({"a": torch.zeros(8)}, path)
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "plain pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    else:  # a Python object: weights_only refuses it, whatever torch suggests
        torch.save({"obj": _NotATensor()}, path)


@pytest.mark.parametrize("kind, reason", [
    ("text", "not tensors as torch.save writes them by default"),
    ("truncated", "truncated, or not a file torch.save wrote"),
    ("plain pickle", "not tensors as torch.save writes them by default"),
    ("python object", "it holds a Python object ("),
    ("empty", "the file is empty (0 bytes)"),
])
def test_safe_torch_load_names_the_file_and_never_advises_weights_only_false(tmp_path, kind, reason):
    import disentangle

    path = tmp_path / "w.pt"
    _write_unreadable(path, kind)
    with pytest.raises(disentangle.DisentangleError) as info:
        disentangle.safe_torch_load(path, "weights file", hint="pass the file you trained")
    message = info.value.message
    assert message.startswith(f"cannot read weights file {path}: ") and reason in message
    if kind == "python object":
        assert "_NotATensor)" in message
    assert "weights_only" not in message and "\n" not in message
    assert info.value.hint == "pass the file you trained"


def test_safe_torch_load_reads_tensors(tmp_path):
    import torch

    import disentangle

    torch.save({"w": torch.arange(3), "n": 2, "s": "x"}, tmp_path / "ok.pt")
    got = disentangle.safe_torch_load(tmp_path / "ok.pt", "file")
    assert got["n"] == 2 and got["s"] == "x" and got["w"].tolist() == [0, 1, 2]


def test_note_prints_brackets_as_written(capsys):
    import disentangle

    disentangle.note("set [data] root in runs/[x]")
    assert "note: set [data] root in runs/[x]" in capsys.readouterr().err
