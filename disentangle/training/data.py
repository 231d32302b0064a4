"""Data order and batches: which sequences each step sees, and how they reach the device.

Two sources give the same batches for the same ``(seed, epoch)``:

- :class:`LoaderBatches`: a ``torch.utils.data.DataLoader`` over any split (items built in Python,
  optional worker processes, pinned memory on CUDA);
- :class:`DeviceBatches`: for an :class:`~disentangle.ArraySplit` that fits on the device, the stored
  arrays (e.g. uint8 video) and labels move there once and every batch is indexed and decoded on
  the device, with no per-step Python work over items and no host transfer.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch

from disentangle.interfaces import ArraySplit, stored_tensor


class IndexedSplit(torch.utils.data.Dataset):
    """Adds each item's position in its split (``batch["index"]``), keeps ``labels`` and ``meta``."""

    def __init__(self, split: Any):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.split[i]
        out = {"x": item["x"], "labels": dict(item.get("labels", {})), "index": i}
        if item.get("meta"):
            out["meta"] = dict(item["meta"])
        return out


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """The batches of one epoch ``(steps, batch_size)``: a permutation seeded by (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    steps = n // batch_size
    return torch.randperm(n, generator=g)[: steps * batch_size].view(steps, batch_size)


def make_loader(split: Any, batches: Sequence[Sequence[int]], num_workers: int = 0, seed: int = 0,
                pin_memory: bool = False) -> torch.utils.data.DataLoader:
    # A private generator: the loader's worker seeds must not draw from the global RNG, or a resumed
    # run would see a different random stream than an uninterrupted one.
    return torch.utils.data.DataLoader(IndexedSplit(split), batch_sampler=batches, num_workers=num_workers,
                                       generator=torch.Generator().manual_seed(seed), pin_memory=pin_memory)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else
                to_device(v, device) if isinstance(v, dict) else v) for k, v in batch.items()}


def iter_batches(split: Any, batch_size: int, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The split in order, ``batch_size`` items at a time (the last batch may be smaller)."""
    n = len(split) if limit is None else min(limit, len(split))
    yield from make_loader(split, [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)])


class LoaderBatches:
    """Batches built by a DataLoader on the host and copied to ``device``."""

    kind = "loader"

    def __init__(self, split: Any, device: torch.device, num_workers: int = 0):
        self.split, self.device, self.num_workers = split, device, num_workers

    def __call__(self, batches: torch.Tensor, seed: int) -> Iterator[dict[str, Any]]:
        loader = make_loader(self.split, batches.tolist(), self.num_workers, seed=seed,
                             pin_memory=self.device.type == "cuda")
        for batch in loader:
            yield to_device(batch, self.device)


class DeviceBatches:
    """Batches indexed from arrays held on ``device`` (see the module docstring)."""

    kind = "device"

    def __init__(self, split: ArraySplit, device: torch.device):
        self.split, self.device = split, device
        self.x = stored_tensor(split.stored_x()).to(device)
        self.labels = {k: stored_tensor(v).to(device) for k, v in split.stored_labels().items()}

    def __call__(self, batches: torch.Tensor, seed: int) -> Iterator[dict[str, Any]]:
        order = batches.to(self.device, non_blocking=True)
        for index in order:  # iterating a device tensor yields device rows: no host sync
            yield {"x": self.split.decode(self.x[index]), "index": index,
                   "labels": {k: v[index] for k, v in self.labels.items()}}


def stored_bytes(split: Any) -> int | None:
    """Bytes of an :class:`ArraySplit`'s stored arrays, or None for other splits."""
    if not isinstance(split, ArraySplit):
        return None
    x = split.stored_x()
    return int(x.nbytes if hasattr(x, "nbytes") else x.numel() * x.element_size())


def choose_batches(split: Any, device: torch.device, mode: str, num_workers: int = 0,
                   budget: float = 0.5) -> LoaderBatches | DeviceBatches:
    """``mode`` ``"device"``, ``"loader"`` or ``"auto"``: on an accelerator, an :class:`ArraySplit`
    whose arrays take at most ``budget`` of the device's free memory is held there."""
    size = stored_bytes(split)
    if mode == "device" or (mode == "auto" and size is not None and device.type == "cuda"
                            and size <= budget * torch.cuda.mem_get_info(device)[0]):
        if size is None:
            from disentangle.errors import DisentangleError

            raise DisentangleError("train.data_on_device = \"device\" needs a dataset whose splits are "
                                   "disentangle.ArraySplit", hint="use \"auto\" or \"loader\"")
        return DeviceBatches(split, device)
    return LoaderBatches(split, device, num_workers)
