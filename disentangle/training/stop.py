"""Clean stops: SIGTERM (what schedulers and ``kill`` send) is treated like Ctrl-C (SIGINT).

While the training loop runs, the first signal only asks it to stop: the loop finishes its step,
checks every pending step finite, writes a checkpoint and raises :class:`Stopped`. Outside the loop
(building the dataset, evaluating), or on a second signal, :class:`KeyboardInterrupt` is raised at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from disentangle.errors import TrainingError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(TrainingError):
    """Training stopped at a step boundary on a signal (a checkpoint was written)."""

    def __init__(self, message: str, hint: str | None, signum: int):
        super().__init__(message, hint)
        self.signum = signum


class StopRequest:
    """Set by the signal handler; read by the loop between steps."""

    def __init__(self) -> None:
        self.armed = False
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a signal"

    def _handle(self, signum: int, frame: Any) -> None:
        if self.armed and self.signum is None:
            self.signum = signum
            return
        self.signum = self.signum or signum
        raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Handle SIGINT and SIGTERM as stop requests for the duration (main thread only)."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {s: signal.signal(s, stop._handle) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
