"""benchmarks/table1.sh runs the presets it is asked for (with a stand-in `disentangle` that only
records its calls, so no model trains)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIX = {"full", "baseline", "baseline-sv", "no-dfp", "no-scc", "no-mi"}

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture
def swept(tmp_path):
    """A function: run table1.sh with the given environment, return {preset: its sweep's arguments}."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "disentangle"
    # records its calls; `validate` fails where FAIL_VALIDATE is set (as a bad metric would)
    stub.write_text('#!/usr/bin/env bash\necho "$*" >> "$CALLS"\n'
                    '[ "$1" = validate ] && [ -n "${FAIL_VALIDATE:-}" ] && { echo "bad metric" >&2; exit 1; }\nexit 0\n')
    stub.chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)  # the script's helper needs tomllib (3.11+)
    base = {k: v for k, v in os.environ.items() if k not in ("PRESETS", "EXTRA_PRESETS")}

    def run(judge_given=False, **env) -> dict[str, str]:
        calls, out = tmp_path / "calls.txt", tmp_path / "out"
        calls.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        if judge_given:  # a judge copied into OUT beforehand
            out.mkdir()
            (out / "judge.pt").write_bytes(b"")
        run.done = subprocess.run(["bash", "benchmarks/table1.sh", str(out)], cwd=ROOT, check=True,
                                  capture_output=True, timeout=60,
                                  env={**base, "PATH": f"{bin_dir}{os.pathsep}{base['PATH']}", "CALLS": str(calls),
                                       "PARALLEL": "16", "RECIPE": "recipes/smmnist.toml", **env})
        sweeps = [line for line in calls.read_text().splitlines() if line.startswith("sweep ")]
        return {Path(line.split()[line.split().index("--out") + 1]).name: line for line in sweeps}

    return run


def test_the_six_by_default(swept):
    assert set(swept()) == SIX


def test_extra_presets_run_with_the_six(swept):
    got = swept(EXTRA_PRESETS="bz4|model.beta_z=4\nmi0.1|regularizers.1.weight=0.1")
    assert set(got) == SIX | {"bz4", "mi0.1"}
    assert "--set model.beta_z=4 " in got["bz4"] and "--set regularizers.1.weight=0.1 " in got["mi0.1"]
    assert "beta_z" not in got["full"]


def test_presets_chooses_among_all(swept):
    assert set(swept(PRESETS="baseline bz4", EXTRA_PRESETS="bz4|model.beta_z=4")) == {"baseline", "bz4"}
    assert set(swept(PRESETS="full", EXTRA_PRESETS="bz4|model.beta_z=4")) == {"full"}


def test_runs_are_scored_by_the_referee_and_more_metrics(swept):
    plain = swept(PRESETS="full")["full"]
    assert '{use="reconstruction"}, {use="dependence-probe"}]' in plain
    more = swept(PRESETS="full", MORE_METRICS='{use="dependence-probe", codes="sample"}')["full"]
    assert '{use="dependence-probe"}, {use="dependence-probe", codes="sample"}]' in more


def test_bad_metrics_stop_it_before_any_training(swept, tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as failed:
        swept(EVAL="later", MORE_METRICS='{use="dependence-probe", codes="median"}', FAIL_VALIDATE="1")
    assert failed.value.returncode == 2 and b"bad metric" in failed.value.stderr
    calls = (tmp_path / "calls.txt").read_text().splitlines()  # the fixture's record
    assert calls and calls[0].startswith("validate ") and not any(c.startswith(("sweep", "judge")) for c in calls)


def test_a_judge_given_beforehand_is_used_not_trained(swept, tmp_path):
    swept(PRESETS="full", judge_given=True)
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert not any(c.startswith("judge ") for c in calls)
    assert "(given, not trained here)" in swept.done.stdout.decode() and not swept.done.stderr
    swept(PRESETS="full")
    assert any(c.startswith("judge train ") for c in (tmp_path / "calls.txt").read_text().splitlines())
