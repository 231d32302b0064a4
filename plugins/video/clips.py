"""How a built set of RGB clips is stored in the cache and read back: uint8 ``(N, T, R, R, 3)`` .npy
(memory-mapped) plus a JSON file of per-clip labels and meta, for the datasets that build clips from
files (``video-folder``, ``mug``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import disentangle
from disentangle_plugins.video import common


def save_split(folder: Path, name: str, x: np.ndarray, labels: dict[str, list[int]], meta: dict[str, list[Any]]) -> None:
    """Write ``<name>_x.npy`` and ``<name>_items.json`` atomically."""
    disentangle.atomic_save_npy(x, folder / f"{name}_x.npy")
    with disentangle.atomic_path(folder / f"{name}_items.json") as tmp:
        tmp.write_text(json.dumps({"labels": labels, "meta": meta}))


class ClipSplit(disentangle.ArraySplit):
    """A split written by :func:`save_split`: items ``{"x": (T, 3, R, R) in [0, 1], "labels", "meta"}``."""

    def __init__(self, folder: Path, name: str):
        self._folder, self._name = Path(folder), name
        self._x: np.ndarray | None = None
        self._labels: dict[str, np.ndarray] = {}
        self._meta: dict[str, list[Any]] = {}

    def _open(self) -> np.ndarray:
        if self._x is None:  # labels first: the frames mark the split as open (threads)
            items = json.loads((self._folder / f"{self._name}_items.json").read_text())
            self._labels = {k: np.asarray(v, dtype=np.int64) for k, v in items["labels"].items()}
            self._meta = items["meta"]
            self._x = np.load(self._folder / f"{self._name}_x.npy", mmap_mode="r")
        return self._x

    def stored_x(self) -> np.ndarray:
        return self._open()

    def stored_labels(self) -> dict[str, np.ndarray]:
        self._open()
        return self._labels

    def stored_meta(self) -> dict[str, Any]:
        self._open()
        return self._meta

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, T, R, R, 3)`` -> float ``(B, T, 3, R, R)`` in [0, 1]."""
        return x.permute(0, 1, 4, 2, 3).float().div_(255.0)

    def __len__(self) -> int:
        return int(self._open().shape[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        x = self._open()
        if not -len(x) <= index < len(x):
            raise IndexError(f"index {index} out of range for a split of {len(x)}")
        item: dict[str, Any] = {"x": common.frames_to_float(x[index]),
                                "labels": {k: int(v[index]) for k, v in self._labels.items()}}
        if self._meta:
            item["meta"] = {k: v[index] for k, v in self._meta.items()}
        return item

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_x": None}
