"""The recipe TOML the docs show is valid: a whole recipe as it stands, a fragment ([[tasks]],
[[eval.metrics]], ...) in place of the same part of recipes/quickstart.toml."""

import re
import tomllib
from pathlib import Path

import pytest

from disentangle.recipe import parse_recipe, read_toml

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [(page, match.group(1)) for page in PAGES
          for match in re.finditer(r"^```toml\n(.*?)^```", page.read_text(), re.S | re.M)]
RECIPE_BLOCKS = [(page, text) for page, text in BLOCKS if "project" not in tomllib.loads(text)]


def as_recipe(fragment: dict) -> dict:
    """A whole recipe as it is; a fragment replaces those sections of the quickstart recipe."""
    if "data" in fragment and "model" in fragment:
        return fragment
    raw = read_toml(ROOT / "recipes" / "quickstart.toml")
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict) and value.get("use") in (None, raw[key].get("use")):
            raw[key].update(value)  # e.g. [[eval.metrics]] replaces eval.metrics only
        else:
            raw[key] = value
    return raw


def test_the_docs_show_recipes():
    assert len(RECIPE_BLOCKS) >= 4
    assert any("data" in tomllib.loads(text) for _, text in RECIPE_BLOCKS)


@pytest.mark.parametrize("page, text", RECIPE_BLOCKS,
                         ids=[f"{p.relative_to(ROOT)}:{t.splitlines()[0][:30]}" for p, t in RECIPE_BLOCKS])
def test_every_recipe_block_is_valid(page, text):
    parse_recipe(as_recipe(tomllib.loads(text)), source=f"{page.relative_to(ROOT)} (toml block)")


def test_a_wrong_key_in_a_block_is_caught():
    from disentangle.errors import DisentangleError

    with pytest.raises(DisentangleError, match="weigth"):
        parse_recipe(as_recipe(tomllib.loads('[[tasks]]\nuse = "flow-grid"\nweigth = 2.0\n')))
