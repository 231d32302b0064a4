"""Component parameters from attrs configs, docs/components.md up to date, every hook documented."""

import re
from pathlib import Path

import attrs

from disentangle import describe, hookspecs
from disentangle.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]


@attrs.frozen
class Documented:
    """A config."""

    size: int = 3
    """How big.

    Second paragraph."""
    names: tuple[str, ...] = attrs.field(factory=lambda: ("a",))
    flag: bool = False
    required_one: float | None = None
    """Optional thing | with a bar."""


def test_params_read_types_defaults_and_attribute_docstrings():
    ps = {p.name: p for p in describe.params(Documented)}
    assert list(ps) == ["size", "names", "flag", "required_one"]
    assert ps["size"] == describe.Param("size", "int", "3", "How big.\n\nSecond paragraph.")
    assert ps["names"].default == "['a']" and ps["names"].doc == ""
    assert ps["flag"].default == "false" and ps["flag"].doc == ""  # no string after it
    assert ps["required_one"].type == "float | None" and ps["required_one"].default == "unset"


def test_markdown_escapes_table_cells():
    reg = load_registry(entry_points=False, extra=[])
    assert "moving-shapes" not in describe.markdown(reg)
    from disentangle.registry import Component

    reg.components[("task", "doc-task")] = Component("task", "doc-task", Documented, Documented, "p")
    text = describe.markdown(reg, distribution=None)
    assert "| `required_one` | `float \\| None` | `unset` | Optional thing \\| with a bar. |" in text


def test_components_md_is_up_to_date():
    expected = describe.markdown(load_registry())
    committed = (ROOT / "docs" / "components.md").read_text(encoding="utf-8")
    assert committed == expected, ("docs/components.md is out of date: regenerate it with "
                                   "`python -m disentangle.describe --markdown > docs/components.md`")


def test_every_hook_is_documented_in_plugins_md():
    """Like datasette's test: a hookspec without a section or table row in docs/plugins.md fails."""
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^(?:#+ |\| )`(\w+)`", docs, flags=re.M))
    hooks = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "disentangle_spec")}
    assert "register_commands" in hooks and "register_tasks" in hooks
    assert hooks - documented == set()
