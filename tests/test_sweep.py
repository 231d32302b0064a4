"""disentangle sweep / compare: grid planning, resumability (finished runs skipped, killed ones
resumed) and the mean ± std table."""

import json

import pytest
from typer.testing import CliRunner

from disentangle import sweep as sw
from disentangle.cli import app
from disentangle.errors import DisentangleError

runner = CliRunner()


def test_plan_crosses_grid_and_seeds(tmp_path):
    runs = sw.plan(tmp_path / "r.toml", [0, 1], ["train.lr=0.1"], sw.parse_grid(["model.z_f_dim=4,8", "data.x=[1,2],[3]"]),
                   tmp_path)
    assert len(runs) == 8 and len({r.run_dir for r in runs}) == 8
    assert runs[0].overrides == ("train.lr=0.1", "model.z_f_dim=4", "data.x=[1,2]", "train.seed=0")
    assert {r.group for r in runs} == {"model.z_f_dim=4,data.x=[1,2]", "model.z_f_dim=4,data.x=[3]",
                                       "model.z_f_dim=8,data.x=[1,2]", "model.z_f_dim=8,data.x=[3]"}
    with pytest.raises(DisentangleError):
        sw.parse_grid(["nokey"])
    with pytest.raises(DisentangleError):
        sw.parse_seeds("a,b")


def fake(tmp_path, name, seed, value):
    d = tmp_path / name
    d.mkdir()
    (d / "recipe.toml").write_text(f"[train]\nseed = {seed}\nlr = 0.1\n")
    (d / "eval.json").write_text(json.dumps({"judge": {"static/acc/mean": value, "static/acc/std": 0.5,
                                                       "static/shape/H(y|x)/mean": value},
                                             "reconstruction": {"mse": value / 10}}))
    return d


def test_compare_groups_seeds_and_reports_mean_std(tmp_path):
    dirs = [fake(tmp_path, f"a-seed{s}", s, v) for s, v in ((0, 0.8), (1, 0.9))]
    table = sw.tabulate(sw.group_runs(dirs))
    assert table.groups == ["a"]
    assert table.cell("judge/static/acc", "a") == "0.85 ± 0.05"
    assert "judge/static/acc/std" not in table.metrics  # spread over rounds is not the spread over seeds
    result = runner.invoke(app, ["compare", *map(str, dirs), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "0.85 ± 0.05" in result.output and (tmp_path / "compare.csv").read_text().startswith("group,metric")
    # a "|" in a metric name is escaped, or it would split the Markdown table's cell
    assert "| judge/static/shape/H(y\\|x) | 0.85 ± 0.05 |" in (tmp_path / "compare.md").read_text()


def test_compare_keeps_presets_with_the_same_run_names_apart(tmp_path):
    # two sweeps (presets) name their runs alike: quickstart-base-seedN in full/ and in no-mi/
    dirs = []
    for preset, lr, values in (("full", 0.1, (0.8, 0.9)), ("no-mi", 0.2, (0.4, 0.6))):
        (tmp_path / preset).mkdir()
        for s, v in enumerate(values):
            d = fake(tmp_path / preset, f"quickstart-base-seed{s}", s, v)
            (d / "recipe.toml").write_text(f"[train]\nseed = {s}\nlr = {lr}\n")
            dirs.append(d)
    groups = sw.group_runs(dirs)
    assert sorted(groups) == ["full/quickstart-base", "no-mi/quickstart-base"]
    table = sw.tabulate(groups)
    assert table.cell("judge/static/acc", "no-mi/quickstart-base") == "0.5 ± 0.1"


def test_sweep_skips_finished_and_resumes_killed_runs(tmp_path, monkeypatch):
    import disentangle.training as training
    from test_cli import TINY

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "sweep"
    calls = []

    def fake_train(spec, run_dir, resume=False, device=None, console=None):
        calls.append((run_dir.name, resume, spec.train.seed))
        (run_dir / "eval.json").parent.mkdir(parents=True, exist_ok=True)
        (run_dir / "eval.json").write_text(json.dumps({"m": {"x": float(spec.train.seed)}}))
        return type("Result", (), {"step": 1})()

    monkeypatch.setattr(training, "train", fake_train)
    done, killed = out / "tiny-base-seed0", out / "tiny-base-seed1"
    for d, seed in ((done, 0), (killed, 1)):
        (d / "checkpoints").mkdir(parents=True)
        (d / "recipe.toml").write_text(TINY.replace("[train]", f"[train]\nseed = {seed}"))
        (d / "checkpoints" / "last.pt").write_bytes(b"")
    (done / "eval.json").write_text(json.dumps({"m": {"x": 0.0}}))
    (done / sw.DONE).write_text("{}")
    result = runner.invoke(app, ["sweep", str(recipe), "--seeds", "0,1,2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert calls == [("tiny-base-seed1", True, 1), ("tiny-base-seed2", False, 2)]
    assert "1 ± 0.82" in (out / "sweep.md").read_text()  # x = 0, 1, 2
    calls.clear()
    assert runner.invoke(app, ["sweep", str(recipe), "--seeds", "0,1,2", "--out", str(out)]).exit_code == 0
    assert calls == []  # everything finished: nothing retrained


def test_a_sweep_with_one_invalid_combination_trains_nothing(tmp_path, monkeypatch):
    import disentangle.training as training
    from test_cli import TINY

    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    calls = []
    monkeypatch.setattr(training, "train", lambda *args, **kwargs: calls.append(args))
    result = runner.invoke(app, ["sweep", str(recipe), "--seeds", "0", "--grid", "train.lr=1e-3,-5",
                                 "--out", str(tmp_path / "sweep")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and calls == []
    assert "[2/2] train.lr=-5 seed 0: its recipe is not valid, so the sweep trains nothing" in said
    assert "train.lr" in said
