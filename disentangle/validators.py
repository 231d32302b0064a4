"""attrs validators for plug-in config classes (recipe parameters), beside ``attrs.validators``.

Each raises ``TypeError`` for a value of the wrong type and ``ValueError`` for one out of range,
naming the parameter; the recipe loader turns both into a message at the parameter's TOML key.
``bool`` is never accepted where an ``int`` is asked for (``True`` is an ``int`` in Python)::

    @attrs.frozen
    class Config:
        hidden: int = attrs.field(default=64, validator=disentangle.validators.positive_int)
        size: int = attrs.field(default=32, validator=disentangle.validators.int_in_range(16, 256))
        limit: int | None = attrs.field(default=None, validator=attrs.validators.optional(disentangle.validators.positive_int))
        resolution: int = attrs.field(default=64, validator=disentangle.validators.one_of(64, 32))
"""

from __future__ import annotations

from typing import Any, Callable

import attrs

__all__ = ["int_in_range", "one_of", "positive_int"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _check_int(attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"'{attribute.name}' must be an int, got {value!r}")


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An ``int`` >= 1."""
    _check_int(attribute, value)
    if value < 1:
        raise ValueError(f"'{attribute.name}' must be >= 1, got {value}")


def int_in_range(low: int | None = None, high: int | None = None) -> Validator:
    """An ``int`` with ``low <= value <= high`` (either bound may be ``None``: unbounded)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        _check_int(attribute, value)
        if (low is not None and value < low) or (high is not None and value > high):
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ValueError(f"'{attribute.name}' must be in [{lo}, {hi}], got {value}")

    return check


def one_of(*choices: Any) -> Validator:
    """One of ``choices`` (compared with ``==``; a ``bool`` never matches a number)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):
            raise ValueError(f"'{attribute.name}' must be one of {', '.join(map(repr, choices))}, got {value!r}")

    return check
