"""Plug-ins (built-in and the example package) use only the public API of the core."""

import ast
import tomllib
from pathlib import Path

import pytest

import disentangle

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = {"disentangle", "disentangle.testing"}


def private_uses(source: str, allow_testing: bool = False) -> list[str]:
    """Every use of the core that is not in ``disentangle.__all__`` (or disentangle.testing)."""
    allowed_modules = {"disentangle", "disentangle.validators"} | ({"disentangle.testing"} if allow_testing else set())
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
    """Every module of the built-in plug-ins (all subpackages) and of the example plug-in package."""
    files = sorted((ROOT / "plugins").rglob("*.py"))
    files += [p for p in sorted((ROOT / "docs" / "examples").rglob("*.py")) if "test" not in p.name]
    return files


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


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
    names = {p.relative_to(ROOT).as_posix() for p in plugin_sources()}
    assert {"plugins/video/conv.py", "plugins/video/flow_grid.py", "plugins/video/moving_shapes.py",
            "plugins/video/sprites.py", "plugins/latent/triplet_scc.py", "plugins/latent/mi_mws.py",
            "plugins/evaluation/latent_metrics.py",
            "docs/examples/disentangle-motion-energy/disentangle_motion_energy/__init__.py"} <= names


def test_every_plugin_folder_is_packaged():
    """setuptools installs exactly the package folders under plugins/ (as disentangle_plugins.*)."""
    folders = {"disentangle_plugins" + "".join("." + part for part in p.parent.relative_to(ROOT / "plugins").parts)
               for p in (ROOT / "plugins").rglob("__init__.py")}
    packaged = {name for name in pyproject()["tool"]["setuptools"]["packages"] if name.startswith("disentangle_plugins")}
    assert packaged == folders


def test_every_core_folder_is_packaged():
    """setuptools installs every package folder of the core (a missing one only shows in a non-editable
    install, as disentangle.training once did on the GPU machine)."""
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "disentangle").rglob("__init__.py")}
    packaged = {name for name in pyproject()["tool"]["setuptools"]["packages"] if name.split(".")[0] == "disentangle"}
    assert packaged == folders


def test_every_plugin_module_is_an_entry_point():
    """Each module that registers components is a plug-in of its own, named in pyproject.toml."""
    targets = set(pyproject()["project"]["entry-points"]["disentangle"].values())
    registering = {"disentangle_plugins." + ".".join(p.relative_to(ROOT / "plugins").with_suffix("").parts)
                   for p in (ROOT / "plugins").rglob("*.py") if "@disentangle.hookimpl" in p.read_text()}
    assert registering == targets
