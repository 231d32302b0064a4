"""Files and progress: atomic writes, the cache folder, a rich progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

CACHE_ENV = "DISENTANGLE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$DISENTANGLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/disentangle``, else ``~/.cache/disentangle``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "disentangle"


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (for cache keys)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def current_umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _writer_tag() -> str:
    """``<host>-<pid>`` in temporary names, so a later process can tell a dead writer's leftovers."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


#: ``.<name>.w<host>-<pid>-<random>.tmp``, the temporary files of :func:`atomic_path`.
_TEMP = re.compile(r"^\..+\.w(?P<host>[A-Za-z0-9_-]*)-(?P<pid>\d+)-[a-z0-9_]+\.tmp$")
#: Temporary files without a writer tag (older versions) are stale after this many seconds.
UNTAGGED_TEMP_AGE = 3600


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, say: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the hidden ``.tmp`` files that killed writers left under ``folder`` (a writer on this
    host whose process is gone; an untagged or foreign one older than :data:`UNTAGGED_TEMP_AGE`)."""
    folder, removed = Path(folder), []
    if not folder.is_dir():
        return removed
    host = _writer_tag().rsplit("-", 1)[0]
    for tmp in folder.rglob(".*.tmp"):
        try:
            if not tmp.is_file():
                continue
            m = _TEMP.match(tmp.name)
            if m and m["host"] == host:
                stale = int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"]))
            else:
                stale = time.time() - tmp.stat().st_mtime > UNTAGGED_TEMP_AGE
            if stale:
                size = tmp.stat().st_size
                tmp.unlink()
                removed.append(tmp)
                if say:
                    say(f"removed {tmp} ({size / 1e6:.1f} MB), left by a writer that was killed")
        except OSError:
            continue
    return removed


def prepare_cache_dir(cache_dir: str | os.PathLike | None, say: Callable[[str], None] | None = None) -> Path:
    """Before a run builds anything: check the cache folder can be written (a clear error naming it
    otherwise) and remove what killed writers left in it."""
    from disentangle.errors import DisentangleError

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    hint = f"make it writable, or point {CACHE_ENV} at a folder you may write to"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DisentangleError(f"cannot create the cache folder {cache_dir}: {exc.strerror}", hint=hint) from None
    if not os.access(cache_dir, os.W_OK | os.X_OK):
        raise DisentangleError(f"the cache folder {cache_dir} is not writable", hint=hint)
    remove_stale_temps(cache_dir, say)
    return cache_dir


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``,
    so readers see the old file or the new one, never a partial one. The file gets the mode the
    umask gives new files (not mkstemp's 0600); errors name ``path``, not the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.w{_writer_tag()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write {path.name} here: {exc.strerror}", str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:  # e.g. a full disk: name the file meant, which keeps its old content
        if exc.filename is not None and Path(exc.filename) != tmp_path:
            raise
        raise OSError(exc.errno, f"could not write {path.name} ({exc.strerror}); the previous "
                      f"{path.name} was kept", str(path)) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def safe_torch_load(path: str | os.PathLike, what: str, hint: str | None = None,
                    map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors, numbers, strings and containers of them.

    A file it cannot read raises :class:`DisentangleError` naming ``what`` (e.g. "judge file") and
    ``path`` with a one-line reason, never torch's advice to load with ``weights_only=False``,
    which would run whatever code the file holds."""
    from disentangle.errors import DisentangleError

    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DisentangleError(f"cannot read {what} {path}: the file is empty (0 bytes)", hint=hint)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the file's format, said below
            warnings.filterwarnings("ignore", module=r"torch\._weights_only_unpickler")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same kind of message
        raise DisentangleError(f"cannot read {what} {path}: {_load_failure(exc)}", hint=hint) from exc


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one line."""
    text = str(exc)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if found:
        return (f"it holds a Python object ({found.group(1)}), and only tensors, numbers and strings "
                "are read from files")
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found or "Weights only load failed" in text:
        detail = found.group(1).strip() if found else type(exc).__name__
        return f"not tensors as torch.save writes them by default ({detail})"
    if "PytorchStreamReader" in text:
        return f"truncated, or not a file torch.save wrote ({text.split('. ')[0].strip()})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def progress_bar(transient: bool = False, disable: bool = False) -> Progress:
    """The rich progress bar used across the project (use as a context manager)."""
    return Progress(
        TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, min_width=8)),
        BarColumn(bar_width=20, table_column=Column(min_width=10)),
        MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=9)), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis")),
        transient=transient, console=Console(stderr=True), disable=disable,
    )


def track(iterable: Any, total: int, description: str) -> Iterator[Any]:
    """Iterate with a progress bar (for one-off preprocessing such as label caches)."""
    with progress_bar() as prog:
        task = prog.add_task(description, total=total, info="")
        for item in iterable:
            yield item
            prog.advance(task)


# ----- verified arrays (caches) --------------------------------------------------------------------
#: Bytes read to fingerprint a file on open: the size, the first block and this many strided blocks.
SAMPLE_BLOCKS, BLOCK = 64, 4096


def note(message: str) -> None:
    """A one-line notice on stderr (e.g. a cache being rebuilt)."""
    Console(stderr=True).print(f"[yellow]note:[/] {escape(message)}", highlight=False, soft_wrap=True)


def sample_digest(path: str | os.PathLike) -> str:
    """A cheap fingerprint of a file's content: SHA-256 of its size and of :data:`SAMPLE_BLOCKS`
    evenly strided blocks of :data:`BLOCK` bytes (about 256 kB read, whatever the file's size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(str(size).encode())
        stride = max(BLOCK, size // SAMPLE_BLOCKS)
        for offset in range(0, size, stride):
            fh.seek(offset)
            h.update(fh.read(BLOCK))
    return h.hexdigest()[:32]


def full_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def array_record(path: str | os.PathLike, sources: Any = None) -> dict[str, Any]:
    """What the ``.npy`` file at ``path`` must be when read back: shape, dtype, size in bytes, a
    sampled and a full SHA-256 of its bytes, and the fingerprint of what it was made from."""
    shape, dtype = npy_header(path)
    return {"shape": list(shape), "dtype": str(dtype), "bytes": Path(path).stat().st_size,
            "sample": sample_digest(path), "sha256": full_digest(path),
            "sources": None if sources is None else fingerprint(sources)}


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype in a ``.npy`` file's header (reads only the header)."""
    with open(path, "rb") as fh:
        major, minor = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    return tuple(shape), dtype


def verify_array(path: str | os.PathLike, record: dict[str, Any] | None, sources: Any = None,
                 full: bool = False) -> str | None:
    """Why ``path`` does not match ``record`` (None when it does). The default check reads the
    header and :func:`sample_digest`'s blocks (fast on every open); ``full`` hashes every byte."""
    path = Path(path)
    if not path.is_file():
        return "is missing"
    if not isinstance(record, dict):
        return "has no record of what it should hold (written by an older version, or its writer was killed)"
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes)"
    try:
        shape, dtype = npy_header(path)
    except (OSError, ValueError, EOFError) as exc:
        return f"cannot be read as an array ({exc or type(exc).__name__})"
    if list(shape) != record.get("shape") or str(dtype) != record.get("dtype"):
        return f"holds {dtype} {tuple(shape)}, expected {record.get('dtype')} {tuple(record.get('shape') or ())}"
    if size != record.get("bytes"):
        return f"has {size} bytes, expected {record.get('bytes')} (truncated or overwritten)"
    if sources is not None and record.get("sources") != fingerprint(sources):
        return "was made from other sources"
    if sample_digest(path) != record.get("sample"):
        return "has content that differs from what was written (damaged)"
    if full and full_digest(path) != record.get("sha256"):
        return "has content that differs from what was written (damaged; found by a full check)"
    return None


def record_path(path: str | os.PathLike) -> Path:
    """The record written beside a cached array: ``<name>.npy.record.json``."""
    path = Path(path)
    return path.with_name(path.name + ".record.json")


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    try:
        record = json.loads(record_path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def save_array(array: np.ndarray, path: str | os.PathLike, sources: Any = None) -> dict[str, Any]:
    """Save ``array`` atomically to ``path`` (.npy), then its record (what it must be when read)."""
    atomic_save_npy(array, path)
    record = array_record(path, sources)
    atomic_write_text(json.dumps(record, indent=1), record_path(path))
    return record


def cached_array(path: Path, compute: Callable[[], np.ndarray], sources: Any = None) -> np.ndarray:
    """Load ``path`` (.npy) if it exists and matches its record, else compute, save (with a record)
    and return. A damaged or unrecorded file is rebuilt with a notice naming it."""
    path = Path(path)
    if path.exists():
        reason = verify_array(path, read_record(path), sources)
        if reason is None:
            try:
                return np.load(path)
            except (OSError, ValueError, EOFError) as exc:
                reason = f"cannot be read ({exc or type(exc).__name__})"
        note(f"cache {path} {reason}; rebuilding it")
    array = compute()
    save_array(np.asarray(array), path, sources)
    return array
