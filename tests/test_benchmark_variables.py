"""The benchmark scripts' settings named in the docs and the results' JSON are ones the scripts read.

``SPRITES_ROOT=… EPOCHS=10 SMMNIST=0 bash benchmarks/gpu_table1.sh OUT``: a shell script ignores a
variable it does not read, so a misspelt or retired setting would run the default silently, on a
GPU slot that cannot be had again. Every ``NAME=value`` written before ``bash benchmarks/<script>.sh``
in the Markdown docs and in the commands stored in benchmarks/results/ must name a variable that the
script reads (``$NAME`` or ``${NAME…}``), and the script must exist.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CALL = re.compile(r"bash (benchmarks/[\w.-]+\.sh)")
ASSIGNMENT = re.compile(r"([A-Z_][A-Z0-9_]*)=")
DOCS = sorted([*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "benchmarks" / "README.md"])


def tokens(text: str) -> list[str]:
    """Shell words of ``text``; ``$'…'`` and unbalanced quotes fall back to splitting on spaces."""
    try:
        return shlex.split(text.replace("$'", "'"))
    except ValueError:
        return text.split()


def settings(text: str) -> list[tuple[str, str]]:
    """``(script, NAME)`` for each ``NAME=value`` right before ``bash benchmarks/<script>.sh``."""
    text = re.sub(r"\\\n\s*", " ", text)  # a command continued over lines
    out = []
    for line in text.splitlines():
        for m in CALL.finditer(line):
            before = tokens(line[: m.start()].rsplit("`", 1)[-1])
            for word in reversed(before):
                name = ASSIGNMENT.match(word)
                if not name:
                    break
                out.append((m.group(1), name.group(1)))
    return out


def stored_commands(value) -> list[str]:
    if isinstance(value, str):
        return [value] if CALL.search(value) else []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [s for v in items for s in stored_commands(v)]


@functools.cache
def documented() -> list[tuple[str, str, str]]:
    found = [(str(f.relative_to(ROOT)), *s) for f in DOCS for s in settings(f.read_text())]
    for f in sorted((ROOT / "benchmarks" / "results").rglob("*.json")):
        for command in stored_commands(json.loads(f.read_text())):
            found += [(str(f.relative_to(ROOT)), *s) for s in settings(command)]
    return found


def reads(script: str, name: str) -> bool:
    return re.search(r"\$\{?" + name + r"\b", (ROOT / script).read_text()) is not None


def test_the_docs_set_benchmark_variables():
    assert {name for _, _, name in documented()} >= {"SPRITES_ROOT", "EPOCHS", "SMMNIST", "TRAIN_LIMIT", "PRESETS"}


@pytest.mark.parametrize("where, script, name", sorted(set(documented())))
def test_each_setting_is_read_by_its_script(where, script, name):
    assert (ROOT / script).is_file(), f"{where} runs {script}, which does not exist"
    assert reads(script, name), f"{where} sets {name} for {script}, which never reads it"


@pytest.mark.parametrize("line, expected", [
    ("`SPRITES_ROOT=/x EPOCHS=10 bash benchmarks/gpu_table1.sh OUT`", [("benchmarks/gpu_table1.sh", "EPOCHS"),
                                                                         ("benchmarks/gpu_table1.sh", "SPRITES_ROOT")]),
    ("cd x && STEPS=2 bash benchmarks/gpu_smmnist.sh OUT", [("benchmarks/gpu_smmnist.sh", "STEPS")]),
    ("PRESETS=\"a b\" EXTRA_PRESETS=$'a|x=1\\nb|y=2' \\\n  bash benchmarks/gpu_smmnist.sh OUT",
     [("benchmarks/gpu_smmnist.sh", "EXTRA_PRESETS"), ("benchmarks/gpu_smmnist.sh", "PRESETS")]),
    ("python benchmarks/table1_summary.py X", []),
])
def test_settings_are_found(line, expected):
    assert settings(line) == expected


def test_a_setting_no_script_reads_is_caught():
    assert reads("benchmarks/gpu_table1.sh", "EPOCHS")
    assert not reads("benchmarks/gpu_table1.sh", "EPOCH")
    assert not reads("benchmarks/gpu_table1.sh", "SPRITES_EPOCHS")
