"""The example third-party plug-in (docs/examples/disentangle-motion-energy) installs and trains.

CI installs it and sets DISENTANGLE_REQUIRE_EXAMPLE=1, so there these tests fail instead of skipping."""

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import disentangle
from disentangle.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "disentangle-motion-energy"


@pytest.fixture
def installed():
    info = {p.name: p for p in disentangle.load_registry().plugins}.get("motion-energy")
    if info is None:
        if os.environ.get("DISENTANGLE_REQUIRE_EXAMPLE"):
            pytest.fail("the example plug-in is not installed: pip install -e docs/examples/disentangle-motion-energy")
        pytest.skip("example plug-in not installed (pip install -e docs/examples/disentangle-motion-energy)")
    return info


def test_example_is_listed_as_a_third_party_plugin(installed):
    assert installed.status == "ok", installed.error
    assert installed.distribution == "disentangle-motion-energy"
    result = CliRunner().invoke(app, ["list-plugins", "--json"])
    names = {p["name"] for p in json.loads(result.stdout)["plugins"]}
    assert {"motion-energy", "conv", "flow-grid"} <= names


def test_example_recipe_trains(installed, tmp_path):
    result = CliRunner().invoke(app, ["run", str(EXAMPLE / "recipe.toml"), "--run-dir", str(tmp_path / "run"),
                                      "--set", "train.max_steps=4"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "motion-energy" in json.loads(lines[-1])
