"""Plug-in code runs inside the core: one wrapper turns its unexpected exceptions into messages."""

from __future__ import annotations

import os
from typing import Any, Callable

from disentangle.errors import DisentangleError

DEBUG_ENV = "DISENTANGLE_DEBUG"


def call_plugin(what: str, fn: Callable[..., Any], *args: Any, verb: str = "failed",
                hint: str = "set DISENTANGLE_DEBUG=1 to see the traceback", **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; an unexpected exception becomes a :class:`DisentangleError` that
    starts with ``what`` (naming the component), unless ``$DISENTANGLE_DEBUG`` is set."""
    try:
        return fn(*args, **kwargs)
    except (DisentangleError, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        raise DisentangleError(f"{what} {verb}: {type(exc).__name__}: {exc}", hint=hint) from exc
