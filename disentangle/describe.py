"""What a component takes: its parameters (type, default, docstring) read from its attrs config.

A parameter's docstring is the string literal right after its field in the config class::

    @attrs.frozen
    class FlowGridConfig:
        grid: int = attrs.field(default=4)
        \"\"\"Cells per side: labels have ``grid * grid`` classes.\"\"\"

``disentangle describe NAME`` prints it; docs/components.md is generated from it::

    python -m disentangle.describe --markdown > docs/components.md
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from typing import Any

import attrs

from disentangle.errors import UnknownComponentError, did_you_mean
from disentangle.kinds import KINDS, kind as kind_of
from disentangle.registry import Component, Registry

_MISSING = "(required)"


@attrs.frozen
class Param:
    """One recipe parameter of a component."""

    name: str
    type: str
    default: str
    doc: str


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> the string literal right after it in ``cls``'s source (empty if unreadable)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        tree = ast.parse(source)
        body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def params(config: type) -> list[Param]:
    """Every parameter of an attrs config class, in field order."""
    docs = attribute_docs(config)
    try:  # string annotations (``from __future__ import annotations``) -> the types they name
        attrs.resolve_types(config)
    except Exception:  # noqa: BLE001 - an unresolvable name is shown as written
        pass
    out = []
    for field in attrs.fields(config):
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            default = _fmt(field.default.factory()) if not field.default.takes_self else "(computed)"
        elif field.default is attrs.NOTHING:
            default = _MISSING
        else:
            default = _fmt(field.default)
        out.append(Param(field.name, _type_name(field.type), default, docs.get(field.name, "")))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        value = list(value)
    if value is None:
        return "unset"
    return repr(value)


def _type_name(typ: Any) -> str:
    if typ is None:
        return "-"
    if isinstance(typ, str):
        return typ
    if isinstance(typ, type):
        return typ.__name__
    return str(typ).replace("typing.", "")


def doc(component: Component) -> str:
    """The component's own docstring (its factory's, else its config class's; never inherited)."""
    text = component.factory.__doc__ or component.config.__doc__ or ""
    return inspect.cleandoc(text)


def find(registry: Registry, name: str) -> list[Component]:
    """Every component called ``name`` (one per kind); :class:`UnknownComponentError` if none."""
    found = [registry.components[(k.name, name)] for k in KINDS if (k.name, name) in registry.components]
    if not found:
        known = sorted({n for _, n in registry.components})
        raise UnknownComponentError(f"no component is called '{name}'{did_you_mean(name, known)}",
                                    hint="`disentangle list-plugins` lists every component")
    return found


def _md(text: str) -> str:
    """RST-style ``code`` -> Markdown `code`."""
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def markdown(registry: Registry, distribution: str | None = "disentangle") -> str:
    """docs/components.md: every component (of ``distribution``'s plug-ins) with its parameters."""
    dists = {p.name: p.distribution for p in registry.plugins}
    lines = ["# Components", "",
             "<!-- Generated from the components' config classes: do not edit by hand. Regenerate with",
             "     python -m disentangle.describe --markdown > docs/components.md -->", "",
             "Every built-in component with its recipe parameters (type, default, meaning). "
             "`disentangle describe NAME` prints the same for any installed component, including "
             "third-party ones. Tasks and regularizers also take `weight` (the loss weight λ, default 1.0).", ""]
    for k in KINDS:
        comps = [c for (kind, _), c in sorted(registry.components.items())
                 if kind == k.name and (distribution is None or dists.get(c.plugin) == distribution)]
        if not comps:
            continue
        lines += [f"## {k.name.capitalize()}s (`{k.section}`)", ""]
        for comp in comps:
            lines += [f"### `{comp.name}`", "", f"Plug-in `{comp.plugin}`.", ""]
            text = doc(comp)
            if text:
                lines += [_md(text), ""]
            ps = params(comp.config)
            if not ps:
                lines += ["No parameters.", ""]
                continue
            lines += ["| parameter | type | default | description |", "|---|---|---|---|"]
            for p in ps:
                cells = [f"`{p.name}`", f"`{p.type}`", f"`{p.default}`", _md(p.doc).replace("\n", " ")]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def text(component: Component, registry: Registry | None = None) -> list[str]:
    """Plain lines for the terminal (the CLI renders parameters as a table)."""
    k = kind_of(component.kind)
    dist = next((p.distribution for p in (registry.plugins if registry else []) if p.name == component.plugin), None)
    lines = [f"{component.kind} '{component.name}' — plug-in '{component.plugin}'"
             + (f" ({dist})" if dist else "") + f"; recipe: {k.section} use = \"{component.name}\""]
    if k.weighted:
        lines.append("also takes weight (the loss weight λ, default 1.0)")
    if doc(component):
        lines += ["", doc(component)]
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--markdown"]:
        print("usage: python -m disentangle.describe --markdown > docs/components.md", file=sys.stderr)
        return 2
    from disentangle.registry import get_registry

    sys.stdout.write(markdown(get_registry()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Param", "attribute_docs", "doc", "find", "markdown", "params", "text"]
