"""report.html: self-contained (no external URL), curves per loss term, metric table with mean ± std
and the judge's ceiling, pictures embedded, recipe and environment shown."""

import json

import numpy as np
from PIL import Image

from disentangle.report import metric_rows, render, write_report


def fake_run(tmp_path):
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    rows = [{"step": s, "epoch": 0, "loss": 10.0 / (s + 1), "kl_f": 0.1 * s} for s in range(1, 50)]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n{broken\n")
    (run / "eval.json").write_text(json.dumps({"judge": {"static/color/Acc/mean": 0.91, "static/color/Acc/std": 0.01,
                                                         "static/color/ceiling": 0.99},
                                               "reconstruction": {"mse": 0.0123}}))
    Image.fromarray(np.zeros((8, 16, 3), np.uint8)).save(run / "images" / "swap.png")
    (run / "recipe.toml").write_text('[data]\nuse = "moving-shapes" # <tag>\n')
    (run / "environment.json").write_text('{"torch": "2.x"}')
    return run


def test_report_is_self_contained_and_complete(tmp_path):
    run = fake_run(tmp_path)
    page = write_report(run).read_text()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    assert "<script" not in page
    assert page.count("<svg") == 2 and "loss" in page and "kl_f" in page
    assert "0.91 ± 0.01" in page and "0.99" in page and "0.0123" in page
    assert "data:image/png;base64," in page and "swap" in page
    assert "&lt;tag&gt;" in page and "2.x" in page  # recipe and environment, escaped


def test_metric_rows_pair_mean_std_and_ceiling():
    rows = metric_rows({"judge": {"dynamic/direction/Acc/mean": 0.5, "dynamic/direction/Acc/std": 0.1,
                                  "dynamic/direction/IS/mean": 3.0, "dynamic/direction/IS/std": 0.2,
                                  "dynamic/direction/ceiling": 0.97}})
    assert rows == [("judge", "dynamic/direction/Acc", "0.5 ± 0.1", "0.97"),
                    ("judge", "dynamic/direction/IS", "3 ± 0.2", "")]


def test_empty_run_dir_still_renders(tmp_path):
    assert "No metrics.jsonl" in render(tmp_path)
