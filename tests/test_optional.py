"""Optional dependencies: extras in pyproject.toml, pinned in constraints.txt, imported with disentangle.require."""

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

import disentangle

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: Import name of each distribution that an extra (other than "test") installs.
IMPORT_NAMES = {"torchaudio": "torchaudio", "soundfile": "soundfile"}


def dist_name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_require_returns_the_module():
    import json

    assert disentangle.require("json", extra="speech") is json


def test_missing_module_names_the_extra_and_the_command():
    with pytest.raises(disentangle.DisentangleError) as info:
        disentangle.require("no_such_module_for_disentangle", extra="speech", purpose="the timit dataset")
    err = info.value
    assert "the timit dataset" in err.message and "no_such_module_for_disentangle" in err.message
    assert "not installed" in err.message
    assert 'pip install "disentangle[speech]"' in err.hint


def test_broken_module_is_not_reported_as_missing(tmp_path, monkeypatch):
    (tmp_path / "broken_for_disentangle.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "failing_for_disentangle.py").write_text("raise ImportError('built against another torch')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, why in (("broken_for_disentangle", "no_such_dependency_xyz"),
                      ("failing_for_disentangle", "another torch")):
        with pytest.raises(disentangle.DisentangleError, match="fails to import") as info:
            disentangle.require(name, extra="faces")
        assert why in info.value.message and "disentangle[faces]" in info.value.hint
        sys.modules.pop(name, None)


def test_torchaudio_is_an_extra_not_a_base_dependency():
    base = {dist_name(r) for r in PROJECT["dependencies"]}
    assert "torchaudio" not in base
    speech = {dist_name(r) for r in PROJECT["optional-dependencies"]["speech"]}
    assert {"torchaudio", "soundfile"} <= speech
    assert "opencv-python-headless" in base  # the README's quickstart uses flow-grid


def test_constraints_pin_every_dependency_and_extra():
    pinned = {dist_name(line) for line in (ROOT / "constraints.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    wanted = {dist_name(r) for r in PROJECT["dependencies"]}
    for extra in PROJECT["optional-dependencies"].values():
        wanted |= {dist_name(r) for r in extra}
    assert wanted - pinned == set(), "add these to constraints.txt"


def test_extras_are_not_imported_at_module_level():
    """Modules of an extra are imported with disentangle.require inside a factory, never at import
    time, so that the core and the other plug-ins load without the extra."""
    extras = {IMPORT_NAMES.get(dist_name(r), dist_name(r)) for name, reqs in PROJECT["optional-dependencies"].items()
              if name != "test" for r in reqs}
    assert extras, "no extras?"
    for path in [*(ROOT / "disentangle").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] not in extras, f"{path}:{node.lineno} imports {name} at module level"
