"""The benchmark scripts summarise what they are given, and answer bad input with a message naming
the file and what to pass, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_table1_summary_tabulates_a_compare_csv(tmp_path):
    (tmp_path / "compare.csv").write_text("group,metric,mean,std,n\n"
                                          "full,judge/static/acc,0.9,0.01,3\nbaseline,judge/static/acc,0.8,0.02,3\n")
    done = script("table1_summary.py", "compare.csv", "--out", "t.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "| full | 90.0 ± 1.0 |" in done.stdout and "| baseline | 80.0 ± 2.0 |" in done.stdout
    assert json.loads((tmp_path / "t.json").read_text())["rows"]["full"]["judge/static/acc"] == [0.9, 0.01, 3]


def test_table1_summary_gives_the_papers_sprites_columns(tmp_path):
    (tmp_path / "compare.csv").write_text(
        "group,metric,mean,std,n\n"
        "full,judge/static/acc,0.9,0.01,3\nfull,judge/dynamic/dynamic/Acc,0.7,0.02,3\n"
        "full,judge/dynamic/dynamic/IS,8.5,0.1,3\nfull,judge/dynamic/dynamic/H(y|x),0.05,0.01,3\n"
        "full,judge/dynamic/dynamic/H(y),2.19,0.001,3\nbaseline,judge/static/acc,0.8,0.02,3\n")
    done = script("table1_summary.py", "compare.csv", "--paper", "dynamic", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Acc: the mean of appearance kept with z_f (90%) and action x direction kept with z_1:T (70%)
    assert "| full | 80.00 | 8.500 ± 0.100 | 0.050 ± 0.010 | 2.190 ± 0.001 |" in done.stdout
    assert "| baseline | – | – | – | – |" in done.stdout


@pytest.mark.parametrize("content, message", [
    (None, "error: cannot read compare.csv: No such file or directory"),
    ("[data]\nuse = 'x'\n", "has no column group, metric, mean, std, n: not a compare.csv"),
    ("group,metric,mean,std,n\nfull,x,abc,1,3\n", "compare.csv, line 2: mean, std and n must be numbers"),
])
def test_table1_summary_names_a_file_that_is_no_compare_csv(tmp_path, content, message):
    if content is not None:
        (tmp_path / "compare.csv").write_text(content)
    done = script("table1_summary.py", "compare.csv", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert message in done.stderr and "hint: pass the compare.csv" in done.stderr


@pytest.mark.parametrize("name", ["quality.py", "throughput.py"])
def test_a_missing_recipe_is_a_message(tmp_path, name):
    done = script(name, "nope.toml", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: recipe file not found: nope.toml" in done.stderr
