"""Structuring recipe tables into attrs configs with cattrs, with errors a person can act on."""

from __future__ import annotations

import re
from typing import Any, Iterator, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from disentangle.errors import did_you_mean


def _strict(kind: type, accept: tuple[type, ...]):
    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, accept) or (isinstance(value, bool) and kind is not bool):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return kind(value)

    return hook


def make_converter() -> cattrs.Converter:
    """The converter for every recipe section: unknown keys are errors, no silent str->int."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _strict(int, (int,)))
    conv.register_structure_hook(float, _strict(float, (int, float)))
    conv.register_structure_hook(str, _strict(str, (str,)))
    conv.register_structure_hook(bool, _strict(bool, (bool,)))
    conv.register_structure_hook_func(lambda t: get_origin(t) is Literal, _literal)
    return conv


def _literal(value: Any, typ: Any) -> Any:
    choices = get_args(typ)
    if value not in choices or type(value) is not type(choices[choices.index(value)]):
        raise ValueError(f"expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


converter = make_converter()


def structure(table: dict[str, Any], cls: type, path: str) -> tuple[Any, list[tuple[str, str]]]:
    """``(config, [])`` or ``(None, [(toml_path, message), ...])`` with every error found."""
    try:
        return converter.structure(table, cls), []
    except Exception as exc:  # noqa: BLE001 - turned into messages below
        return None, list(explain(exc, path, cls))


def unstructure(config: Any) -> dict[str, Any]:
    """A TOML-ready dict (``None`` values dropped, tuples as lists)."""
    return _clean(converter.unstructure(config))


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def field_names(cls: type) -> list[str]:
    return [a.name for a in attrs.fields(cls)] if attrs.has(cls) else []


def explain(exc: BaseException, path: str, cls: type | None = None) -> Iterator[tuple[str, str]]:
    """Flatten a cattrs/attrs exception into ``(toml_path, message)`` pairs."""
    if isinstance(exc, ForbiddenExtraKeysError):
        valid = field_names(exc.cl)
        for key in sorted(exc.extra_fields):
            yield (f"{path}.{key}",
                   f"unknown key '{key}'{did_you_mean(key, valid)}; valid keys: {', '.join(valid) or 'none'}")
    elif isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            name = getattr(note, "name", None)
            index = getattr(note, "index", None)
            sub_path = f"{path}.{name}" if name is not None else f"{path}.{index}"
            if isinstance(sub, KeyError) and name is not None:
                typ = getattr(note, "type", None)
                yield (sub_path, f"missing required key '{name}' (expected {_type_name(typ)})")
            else:
                yield from explain(sub, sub_path)
        for sub in without:
            yield from explain(sub, path, getattr(exc, "cl", cls))
    elif isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            yield from explain(sub, path)
    else:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, (ValueError, TypeError)) and "must be" in msg:
            # attrs validators name the field first: "'lr' must be > 0: -1" -> path "train.lr"
            named = re.match(r"^'(\w+)'", msg)
            if named and cls is not None and named.group(1) in field_names(cls):
                path = f"{path}.{named.group(1)}"
            msg = f"invalid value: {msg}"
        yield (path, msg)


def _type_name(typ: Any) -> str:
    return getattr(typ, "__name__", None) or str(typ).replace("typing.", "")
