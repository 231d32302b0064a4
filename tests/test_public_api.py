"""Plug-ins (built-in and the example package) use only the public API of the core."""

import ast
from pathlib import Path

import pytest

import disentangle

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = {"disentangle", "disentangle.testing"}


def private_uses(source: str, allow_testing: bool = False) -> list[str]:
    """Every use of the core that is not in ``disentangle.__all__`` (or disentangle.testing)."""
    allowed_modules = {"disentangle"} | ({"disentangle.testing"} if allow_testing else set())
    problems = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("disentangle.") and alias.name not in allowed_modules:
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "disentangle":
            if node.module not in allowed_modules:
                problems.append(f"line {node.lineno}: from {node.module} import …")
            elif node.module == "disentangle":
                for alias in node.names:
                    if alias.name not in disentangle.__all__ and not (allow_testing and alias.name == "testing"):
                        problems.append(f"line {node.lineno}: from disentangle import {alias.name}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "disentangle":
            if node.attr not in disentangle.__all__ and not (allow_testing and node.attr == "testing"):
                problems.append(f"line {node.lineno}: disentangle.{node.attr}")
    return problems


def plugin_sources():
    files = sorted((ROOT / "plugins").glob("*.py"))
    files += [p for p in sorted((ROOT / "docs" / "examples").rglob("*.py")) if "test" not in p.name]
    return files


def test_checker_catches_private_imports():
    bad = "import disentangle.model\nfrom disentangle.trainer import train\nfrom disentangle import _x\n" \
          "import disentangle\ndisentangle.registry.get_registry()\n"
    assert len(private_uses(bad)) == 4
    assert private_uses("import disentangle\nfrom disentangle import Task, hookimpl\n") == []


def test_every_public_name_exists():
    for name in disentangle.__all__:
        assert hasattr(disentangle, name), name


@pytest.mark.parametrize("path", plugin_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_use_only_the_public_api(path):
    assert private_uses(path.read_text()) == [], f"{path} reaches into the core's private modules"


def test_plugins_found():
    names = {p.name for p in plugin_sources()}
    assert {"conv.py", "flow_grid.py", "triplet_scc.py", "mi_mws.py", "moving_shapes.py", "sprites.py"} <= names
