"""The baseline and ablation `--set` lines of docs/recipes.md give exactly the documented components
for every video recipe."""

import re
from pathlib import Path

import pytest

from disentangle import load_recipe

ROOT = Path(__file__).resolve().parents[1]
VIDEO_RECIPES = ("quickstart", "sprites", "smmnist", "mug", "video-folder")


def documented_variants() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "recipes.md").read_text()
    table = text.split("## Baseline and ablations", 1)[1].split("```", 1)[0]
    out = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("variant", "---") and not cells[0].startswith("-"):
            code = " ".join(re.findall(r"`([^`]*)`", cells[2]))
            out[cells[0]] = [part.strip().strip("'") for part in code.split("--set") if part.strip()]
    return out


def test_the_table_lists_the_variants():
    assert set(documented_variants()) == {"full model", "baseline", "no L_SCC", "no L_DFP", "no L_MI"}


@pytest.mark.parametrize("recipe", VIDEO_RECIPES)
def test_variants_remove_exactly_their_terms(recipe):
    variants = documented_variants()
    full = load_recipe(ROOT / "recipes" / f"{recipe}.toml")
    tasks = {t.use for t in full.tasks}
    assert {r.use for r in full.regularizers} == {"triplet-scc", "mi-mws"} and "flow-grid" in tasks
    want = {
        "full model": (tasks, {"triplet-scc", "mi-mws"}),
        "baseline": (set(), set()),
        "no L_SCC": (tasks, {"mi-mws"}),
        "no L_DFP": (set(), {"triplet-scc", "mi-mws"}),
        "no L_MI": (tasks, {"triplet-scc"}),
    }
    for name, sets in variants.items():
        r = load_recipe(ROOT / "recipes" / f"{recipe}.toml", sets)
        assert ({t.use for t in r.tasks}, {g.use for g in r.regularizers}) == want[name], (name, sets)
