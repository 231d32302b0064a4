"""Errors that the CLI shows as a clear message (never a traceback)."""

from __future__ import annotations

import difflib
from typing import Iterable


class DisentangleError(Exception):
    """Base class of the errors shown to users as a message; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UnknownComponentError(DisentangleError):
    """A recipe names a component that no loaded plug-in registers."""


class PluginConflictError(DisentangleError):
    """Two plug-ins register the same component name."""


class TrainingError(DisentangleError):
    """Training cannot go on (e.g. a non-finite loss)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""
