"""A plug-in written against the first release's docs (tests/legacy_plugin.py) still
loads, trains and evaluates: objectives without the ``step`` argument, metrics in the
``compute(model, data, device)`` form."""

import json
import tomllib

import disentangle
from disentangle.recipe import apply_overrides, parse_recipe
from disentangle.training import train

import legacy_plugin
from toy_plugins import TOY_RECIPE, ToyPlugin


def test_a_plugin_written_against_the_old_docs_still_trains(tmp_path):
    reg = disentangle.load_registry(entry_points=False, extra=[("toy", ToyPlugin()), ("legacy", legacy_plugin)])
    raw = apply_overrides(tomllib.loads(TOY_RECIPE), ["train.max_steps=3"])
    raw["tasks"] = [{"use": "legacy-motion-energy", "weight": 0.5}]
    raw["eval"]["metrics"] = [{"use": "legacy-mean-abs"}]
    result = train(parse_recipe(raw, registry=reg), tmp_path / "run", registry=reg, cache_dir=tmp_path / "cache")
    assert result.step == 3
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["legacy-motion-energy"] > 0
    assert result.eval["legacy-mean-abs"]["mean_abs_z_f"] >= 0
