"""Data-parallel training under ``torchrun``: one process per device, gradients averaged every step.

    torchrun --nproc_per_node=4 -m disentangle run recipes/sprites.toml --set data.root=...

``train.batch_size`` stays the *global* batch: each of the W processes takes every W-th sequence of
each batch (so it must divide by W), computes its losses on that shard (MI-MWS and SCC see the
global batch through :meth:`World.gather`) in one module (``training.loss.TotalLoss``)
wrapped in ``DistributedDataParallel``, whose all-reduce averages the gradients while backward
runs, so every process holds the same weights. Checkpoints keep every process's random state. Rank 0 alone writes the run
directory. CUDA devices use NCCL; CPU processes use Gloo (which is how the tests run it).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Iterator, Sequence

import attrs
import torch
import torch.distributed as dist

from disentangle.errors import DisentangleError


@attrs.frozen
class World:
    """Where this process stands among the training processes (size 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every process's ``tensor`` concatenated along dim 0 in rank order (the global batch, for a
        batch-shaped tensor), with gradients flowing back to each process's own rows; ``tensor``
        itself without torchrun. Every process must call it, with the same shape."""
        if not self.active:
            return tensor
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(tensor), dim=0)


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group that ``torchrun`` describes in the environment (if any) and pick this
    process's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DisentangleError(f"process {rank} wants GPU {local}, but only {torch.cuda.device_count()} "
                                   "are visible", hint="run at most one process per GPU (--nproc_per_node)")
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return World(rank=rank, size=size, local_rank=local), device


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (e.g. so that one process builds a cache
    and the rest read it)."""
    if not world.is_main:
        barrier(world)
    yield
    if world.is_main:
        barrier(world)


def shard(batches: list[list[int]], world: World) -> list[list[int]]:
    """This process's part of each global batch."""
    return [b[world.rank:: world.size] for b in batches] if world.active else batches


def check_batch_size(batch_size: int, world: World) -> None:
    if world.active and (batch_size % world.size or batch_size // world.size < 2):
        raise DisentangleError(
            f"train.batch_size = {batch_size} does not divide among {world.size} processes into shards of "
            "at least 2 sequences", hint=f"use a multiple of {world.size} of at least {2 * world.size}; "
                                         "it is the global batch size")


def wrap(module: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module:
    """``module`` itself in a single process; else ``DistributedDataParallel(module)``, whose bucketed
    all-reduce averages the gradients across processes while backward runs (parameters that a step
    does not use are allowed)."""
    if not world.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


def gather_objects(obj: object, world: World) -> list[object]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` without torchrun)."""
    if not world.active:
        return [obj]
    out: list[object] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def any_true(flag: bool, world: World, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (so that all stop together)."""
    if not world.active:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
