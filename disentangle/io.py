"""Files and progress: atomic writes, the cache folder, a rich progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from rich.console import Console
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``,
    so readers see the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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


def cached_array(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Load ``path`` (.npy) if it exists, else compute, save atomically and return."""
    if path.exists():
        return np.load(path)
    array = compute()
    atomic_save_npy(array, path)
    return array
