"""Recipes: structuring, every error at once with TOML paths and did-you-mean, overrides, round-trip."""

import tomllib
from pathlib import Path

import pytest

from disentangle.errors import DisentangleError
from disentangle.recipe import RecipeError, apply_overrides, load_recipe, parse_override, parse_recipe
from toy_plugins import TOY_RECIPE, NoConfig, toy_registry

ROOT = Path(__file__).resolve().parents[1]


def toy(**changes):
    raw = tomllib.loads(TOY_RECIPE)
    for key, value in changes.items():
        apply_overrides(raw, [f"{key}={value}"])
    return raw


def test_toy_recipe_structures_with_defaults():
    r = parse_recipe(toy(), registry=toy_registry())
    assert r.data.use == "toy" and r.data.config.n_train == 16
    assert r.model.z_f_dim == 4 and r.train.batch_size == 4 and r.train.max_steps is None
    assert r.regularizers[0].weight == 0.5 and r.regularizers[0].config.scale == 1.0
    assert r.eval.num_images == 2 and r.tasks == ()


def test_all_errors_reported_at_once_with_paths_and_suggestions(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(TOY_RECIPE.replace("n_train = 16", "n_trian = 16")
                    .replace("lr = 0.001", "lr = -1.0\nepoch = 3")
                    .replace('use = "z-norm"', 'use = "z-nrom"')
                    .replace("batch_size = 4", 'batch_size = "four"')
                    + "\n[trian]\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path, registry=toy_registry())
    problems = dict(info.value.problems)
    assert "did you mean 'n_train'" in problems["data.n_trian"]
    assert "did you mean 'epochs'" in problems["train.epoch"]
    assert "did you mean 'z-norm'" in problems["regularizers.0.use"]
    assert "expected int" in problems["train.batch_size"]
    assert "did you mean 'train'" in problems["trian"]
    assert str(path) in str(info.value)


def test_validator_errors_name_the_section():
    with pytest.raises(RecipeError) as info:
        parse_recipe(toy(**{"train.lr": "-1.0"}), registry=toy_registry())
    (path, message), = info.value.problems
    assert path == "train.lr" and "'lr' must be > 0" in message


def test_missing_sections_and_use():
    raw = toy()
    del raw["model"]["encoder"]
    del raw["data"]["use"]
    with pytest.raises(RecipeError) as info:
        parse_recipe(raw, registry=toy_registry())
    paths = [p for p, _ in info.value.problems]
    assert "model.encoder" in paths and "data.use" in paths


def test_negative_weight_is_rejected():
    with pytest.raises(RecipeError, match=r"regularizers\.0\.weight"):
        parse_recipe(toy(**{"regularizers.0.weight": "-2"}), registry=toy_registry())


def test_overrides_parse_toml_values_and_fall_back_to_strings():
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)
    assert parse_override("data.root=/some/path") == (["data", "root"], "/some/path")
    assert parse_override("tasks.0.weight=2") == (["tasks", 0, "weight"], 2)
    with pytest.raises(DisentangleError):
        parse_override("novalue")
    with pytest.raises(DisentangleError, match="index"):
        apply_overrides(toy(), ["regularizers.5.weight=1"])


@pytest.mark.parametrize("text", ['eval.metrics=[{use=latent-probe}]', "tasks=[{use=flow-grid, weight=2}]",
                                  "model.encoder={use=conv"])
def test_an_array_or_table_that_lost_its_quotes_is_an_error_not_a_string(text):
    with pytest.raises(DisentangleError, match="not valid TOML") as info:
        parse_override(text)
    assert "at line" not in info.value.message and "single quotes" in info.value.hint
    with pytest.raises(DisentangleError, match="not valid TOML") as info:
        parse_override("model.encoder.channels=[16,32")  # broken, but no quotes lost
    assert "single quotes" not in info.value.hint
    assert parse_override('eval.metrics=[{use="latent-probe"}]')[1] == [{"use": "latent-probe"}]


def test_resolved_recipe_round_trips():
    reg = toy_registry()
    r = parse_recipe(toy(**{"train.max_steps": "7"}), registry=reg)
    again = parse_recipe(tomllib.loads(r.to_toml()), registry=reg)
    assert again.to_dict() == r.to_dict()
    assert again.train.max_steps == 7 and again.train.seed == 0  # defaults are written out


def test_invalid_toml_is_a_recipe_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[data\nuse = 1")
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(path, registry=toy_registry())


def test_missing_file_error():
    with pytest.raises(DisentangleError, match="recipe file not found"):
        load_recipe("nope.toml", registry=toy_registry())


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    load_recipe(path)


def test_a_conflict_blocks_only_recipes_that_use_the_name():
    import disentangle
    from toy_plugins import ToyPlugin

    class Clash:
        @disentangle.hookimpl
        def register_regularizers(self, register):
            register("z-norm", lambda c, x: None, config=NoConfig)

    reg = disentangle.load_registry(entry_points=False, extra=[("toy", ToyPlugin()), ("clash", Clash())])
    with pytest.raises(RecipeError, match="registered by both plug-in 'toy'.*and plug-in 'clash'"):
        parse_recipe(toy(), registry=reg)
    raw = toy()
    del raw["regularizers"]
    assert parse_recipe(raw, registry=reg).regularizers == ()


def test_resolved_quickstart_keeps_array_of_table_headers():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = load_recipe(root / "recipes" / "quickstart.toml")
    text = r.to_toml()
    lines = text.splitlines()
    assert lines.count("[[tasks]]") == 1 and lines.count("[[regularizers]]") == 2
    assert lines.count("[[eval.metrics]]") == 2
    assert not any(line.startswith(("tasks =", "regularizers =", "metrics =")) for line in lines)
    assert parse_recipe(tomllib.loads(text)).to_dict() == r.to_dict()


def test_single_regularizer_is_written_as_a_table_header():
    r = parse_recipe(tomllib.loads(TOY_RECIPE), registry=toy_registry())
    text = r.to_toml()
    assert "\n[[regularizers]]\nuse = \"z-norm\"\nweight = 0.5\n" in text
    assert text.index("[data]") < text.index("[[regularizers]]") < text.index("[train]")
    assert parse_recipe(tomllib.loads(text), registry=toy_registry()).to_dict() == r.to_dict()
