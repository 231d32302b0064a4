"""One writer per run directory: an exclusive lock held for the whole of `run` / `run --resume`.

The lock is ``<run dir>/.lock``, an ``flock``-ed file holding the owner's pid, host and start time.
The operating system drops an ``flock`` when its process dies (also on kill -9), so a lock file left
by a dead process is taken over (with a message); a live holder makes the second writer fail with
an error naming it. Readers (``evaluate``, ``sample``) take no lock: they read the atomically
written checkpoint, which carries the recipe it was trained with.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from disentangle.errors import DisentangleError
from disentangle.io import remove_stale_temps

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an O_EXCL file and a pid check instead
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"


def read_holder(run_dir: Path) -> dict[str, Any] | None:
    """The owner recorded in ``run_dir``'s lock file (None when there is none or it is unreadable)."""
    try:
        info = json.loads((Path(run_dir) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid')} on {info.get('host')} (since {info.get('started')})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_locked(run_dir: Path) -> dict[str, Any] | None:
    """The holder's info if a live process holds ``run_dir``'s lock, else None (never blocks)."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return None
    if fcntl is None:
        info = read_holder(run_dir)
        return info if info and _pid_alive(int(info.get("pid", -1))) else None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return read_holder(run_dir) or {}
    finally:
        os.close(fd)
    return None


@contextlib.contextmanager
def run_lock(run_dir: Path, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold ``run_dir``'s exclusive lock; create the directory if needed (and remove it again if the
    run left nothing in it)."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    if run_dir.exists() and not run_dir.is_dir():
        raise DisentangleError(f"run directory {run_dir} is a file", hint="pass another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DisentangleError(f"cannot create run directory {run_dir}: {exc.strerror}",
                               hint="pass a --run-dir you may write to") from None
    path = run_dir / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    fd = _acquire(path, run_dir, say)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode())
        remove_stale_temps(run_dir, say)  # half-written files of a killed run
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)
        if created:
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only succeeds when the run wrote nothing


def _busy(run_dir: Path, info: dict[str, Any] | None) -> DisentangleError:
    return DisentangleError(f"{run_dir} is in use by {describe_holder(info)}: one run writes to a run "
                            "directory at a time",
                            hint="wait for it to finish (or stop it), or pass another --run-dir; "
                                 "`disentangle evaluate` and `sample` may read it meanwhile")


def _acquire(path: Path, run_dir: Path, say: Callable[[str], None]) -> int:
    try:
        if fcntl is None:  # pragma: no cover
            return _acquire_excl(path, run_dir, say)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(run_dir, read_holder(run_dir)) from None
            try:  # the holder may have removed the file between our open and flock: lock the new one
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = read_holder(run_dir)
        if old and old.get("pid") is not None:
            say(f"note: took over the lock of {run_dir} left by {describe_holder(old)}, which is no longer running")
        return fd
    except PermissionError as exc:
        raise DisentangleError(f"cannot write to run directory {run_dir}: {exc.strerror}",
                               hint="pass a --run-dir you may write to") from None


def _acquire_excl(path: Path, run_dir: Path, say: Callable[[str], None]) -> int:  # pragma: no cover
    for _ in range(2):
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            info = read_holder(run_dir)
            if info and _pid_alive(int(info.get("pid", -1))) and info.get("host") == socket.gethostname():
                raise _busy(run_dir, info) from None
            say(f"note: took over the lock of {run_dir} left by {describe_holder(info)}, which is no longer running")
            path.unlink(missing_ok=True)
    raise _busy(run_dir, read_holder(run_dir))
