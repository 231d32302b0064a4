"""What the cache folder holds and whether it is intact (``disentangle cache list|verify|clear``).

Entries: each ``<cache_dir>/<name>/<key>.npy`` with its ``.record.json`` (pseudo-label caches,
:func:`disentangle.io.cached_array`), and each folder with a ``manifest.json`` whose ``files``
records its arrays (dataset builds such as ``sprites-<key>/``). Hidden ``.tmp`` files are what a
killed writer left.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator

import attrs

from disentangle.io import read_record, verify_array


@attrs.define
class Entry:
    path: Path
    kind: str  # "array", "build" or "leftover"
    bytes: int
    state: str  # "ok", or why not

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def entries(cache_dir: Path, full: bool = False) -> Iterator[Entry]:
    """Every cache entry under ``cache_dir`` with its size and state (``full`` hashes every byte)."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        return
    for manifest in sorted(cache_dir.glob("*/manifest.json")):
        folder = manifest.parent
        try:
            files = json.loads(manifest.read_text()).get("files")
        except (OSError, ValueError, AttributeError):
            files = None
        state = "ok"
        if not isinstance(files, dict):
            state = "no record of its files (built by an older version; rebuilt on next use)"
        else:
            for name, record in sorted(files.items()):
                reason = verify_array(folder / name, record, full=full)
                if reason:
                    state = f"{name} {reason}"
                    break
        yield Entry(folder, "build", _size(folder), state)
    for npy in sorted(cache_dir.rglob("*.npy")):
        if (npy.parent / "manifest.json").exists() or npy.name.startswith("."):
            continue
        yield Entry(npy, "array", npy.stat().st_size, verify_array(npy, read_record(npy), full=full) or "ok")
    for tmp in sorted(cache_dir.rglob(".*.tmp")):
        yield Entry(tmp, "leftover", _size(tmp), "a temporary file left by a killed writer")


def clear(path: Path) -> int:
    """Remove one entry (an array with its record, or a build folder); returns the bytes freed."""
    size = _size(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
        rec = path.with_name(path.name + ".record.json")
        if rec.exists():
            size += rec.stat().st_size
            rec.unlink()
    return size
