"""The run directory's bookkeeping: environment.json, the per-step log metrics.jsonl and, with
``train.tensorboard``, the same scalars as TensorBoard event files in ``tensorboard/``."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable

import torch

from disentangle.errors import DisentangleError
from disentangle.io import atomic_write_text
from disentangle.optional import require

#: The run directory's record of what the run ran on (written by :func:`environment`'s caller).
ENVIRONMENT_FILE = "environment.json"
#: The run directory's folder of TensorBoard event files.
TENSORBOARD_DIR = "tensorboard"

PACKAGES = ("disentangle", "torch", "torchvision", "torchaudio", "numpy", "pluggy", "attrs", "cattrs",
            "opencv-python-headless")


def environment(device: torch.device, seed: int, plugins: list[dict[str, Any]]) -> dict[str, Any]:
    """What a run ran on: Python, platform, package and plug-in versions, device, seed, argv."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    env = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": {p: ver(p) for p in PACKAGES}, "plugins": plugins,
        "seed": seed, "device": str(device), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "argv": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


#: What decides the CPU's sums, and so whether a CPU run repeats bit for bit: the number of torch threads
#: splits the reductions, the instruction set picks the kernels.
CPU_REPEAT_KEYS = ("torch_threads", "cpu_capability")


def cpu_repeat_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between a run's earlier environment.json and this process in the settings that
    decide whether its CPU steps repeat the earlier ones bit for bit, e.g. ``["torch_threads 1 -> 2"]``
    (a key the earlier file lacks is not compared)."""
    return [f"{key} {before[key]} -> {now[key]}" for key in CPU_REPEAT_KEYS
            if key in before and before[key] != now.get(key)]


def truncate_metrics(path: Path, step: int) -> None:
    """Drop logged steps after ``step`` (a run resumed from an older checkpoint redoes them) and any
    line cut short when the run was killed."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    atomic_write_text("".join(line + "\n" for line in keep), path)


def require_tensorboard() -> Any:
    """``torch.utils.tensorboard.writer``, or a clear error naming the ``tensorboard`` extra."""
    require("tensorboard", extra="tensorboard", purpose="train.tensorboard = true")
    return require("torch.utils.tensorboard.writer", extra="tensorboard", purpose="train.tensorboard = true")


class TensorBoardLog:
    """TensorBoard event files in ``<run_dir>/tensorboard/`` (``train.tensorboard``).

    Each step's scalars go into one summary event (``add_scalar`` per value costs about five times
    more). Every writer adds a new event file. A ``fresh`` run first removes the event files of an
    earlier attempt in the same folder, as it starts metrics.jsonl again; a run resumed at ``step``
    writes a purge marker at ``step + 1``, so that TensorBoard hides what an earlier process logged
    after the checkpoint (the steps that are redone), as :func:`truncate_metrics` drops those lines."""

    def __init__(self, run_dir: Path, step: int, fresh: bool):
        writer = require_tensorboard()
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.compat.proto.summary_pb2 import Summary

        self._summary = Summary
        folder = run_dir / TENSORBOARD_DIR
        try:
            if fresh and folder.is_dir():
                for old in folder.glob("events.out.tfevents.*"):
                    old.unlink()
            self.writer = writer.FileWriter(str(folder))
        except OSError as exc:
            raise DisentangleError(f"cannot write TensorBoard event files into {folder}: {exc.strerror or exc}",
                                   hint="check the run directory's permissions, or set train.tensorboard = false") from None
        if not fresh:
            self.writer.add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log ``{tag: value}`` at ``step`` (non-finite values are left out)."""
        kept = [self._summary.Value(tag=k, simple_value=float(v)) for k, v in values.items() if math.isfinite(v)]
        if kept:
            self.writer.add_summary(self._summary(value=kept), step)

    def eval(self, step: int, results: dict[str, Any]) -> None:
        """The evaluation's numbers as scalars ``eval/<metric>/<name>`` at ``step``."""
        self.scalars(step, {f"eval/{metric}/{name}": value for metric, values in results.items()
                            if isinstance(values, dict) for name, value in values.items()
                            if isinstance(value, (int, float)) and not isinstance(value, bool)})
        self.flush()

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class StepLog:
    """Per-step loss terms, kept on the device and read by the host only at :meth:`flush`.

    ``record`` stores one step's terms as a stacked tensor (no synchronisation); ``flush`` copies
    every pending step to the host at once, writes one JSON line per step to metrics.jsonl (when
    ``fh`` is given) and the same values as scalars ``train/<term>`` to a TensorBoard ``board``
    (when given), and reports whether any value was non-finite, and from which step."""

    def __init__(self, fh: IO[str] | None, on_step: Callable[[int, dict[str, float]], None] | None = None,
                 board: TensorBoardLog | None = None):
        self.fh, self.on_step, self.board = fh, on_step, board
        self.pending: list[tuple[int, int, list[str], torch.Tensor]] = []
        self.last: dict[str, float] = {}

    def record(self, step: int, epoch: int, terms: dict[str, torch.Tensor]) -> None:
        names = list(terms)
        self.pending.append((step, epoch, names, torch.stack([t.detach().float() for t in terms.values()])))

    def flush(self) -> tuple[int | None, list[str]]:
        """Write pending steps; return ``(first non-finite step or None, its non-finite terms)``."""
        if not self.pending:
            return None, []
        values = torch.stack([p[3] for p in self.pending]).cpu().tolist()  # the one host sync
        bad_step, bad = None, []
        for (step, epoch, names, _), row in zip(self.pending, values):
            logged = dict(zip(names, row))
            nonfinite = [k for k, x in logged.items() if x != x or x in (float("inf"), float("-inf"))]
            if nonfinite:
                bad_step, bad = step, nonfinite
                break
            self.last = logged
            if self.fh is not None:
                self.fh.write(json.dumps({"step": step, "epoch": epoch, **logged}) + "\n")
            if self.board is not None:
                self.board.scalars(step, {f"train/{name}": value for name, value in logged.items()})
            if self.on_step is not None:
                self.on_step(step, logged)
        self.pending.clear()
        if self.fh is not None:
            self.fh.flush()
        if self.board is not None:
            self.board.flush()
        return bad_step, bad
