"""The tables of the longer Sprites runs say what the results' JSON says.

docs/results.md gives each run continued past 2,400 steps at conv channels 32-256 a row in a table
headed "| 32–256, seed S |": one row per preset (or baseline-sv at another label weight, or the full
model at another triplet-scc margin, likelihood scale or KL warm-up) and step count, a row marked
"(Intel)" being a run trained again on the Intel machines; their three-seed means stand in tables
headed "| 32–256, 3 seeds, N steps |", one row per preset (or label weight, margin, likelihood
scale, KL warm-up, or "(Intel)"); a table headed "| re-scored over N rounds |" holds checkpoints
scored again over N rounds of the judge. Every cell here is formatted from ``longer_*`` (and
``label_weight_*``, ``scc_margin_*``, ``kl_weighting_*``, ``judge_rounds``) entries of
benchmarks/results/sprites-conv32-reduced-cpu.json, so that a figure typed by hand or left behind by
a rerun fails.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal

import pytest
from test_headline_figures import ROOT, SPRITES_CPU, TABLE1_NAMES, load, split_row

DOC = ROOT / "docs" / "results.md"
HEADER = re.compile(r"^\| 32–256, seed (\d) \|")
MEANS_HEADER = re.compile(r"^\| 32–256, 3 seeds, ([\d,]+) steps \|")
PRESETS = {name: preset for preset, name in TABLE1_NAMES.items()}  # "No-DFP": "no-dfp"
VARIANTS = {  # a preset at another setting, named in a row: the prefix of its key in the JSON
    re.compile(r"baseline-sv, label weight ([\d,]+)"): "sv",  # baseline-sv at another weight: "sv100"
    re.compile(r"full, triplet-scc margin ([\d,]+)"): "m",  # the full model at another SCC margin: "m10"
    re.compile(r"full, likelihood at (\d+)× the KL"): "lik",  # the KL weights at 1/N: "lik4"
    re.compile(r"full, KL warm-up over ([\d,]+) steps"): "klw",  # KL weights from 0 to 1: "klw1000"
}
INTEL = " (Intel)"  # a run trained again on the Intel machines: an entry whose key ends "_intel"
FAMILIES = (r"longer_\d+", "label_weight", "scc_margin", "kl_weighting")  # JSON keys: FAMILY_seedS[_...]


def run_of(row: str) -> tuple[str, bool]:
    """The preset a row names, and whether it is a run trained again on the Intel machines:
    "No-DFP (above)" is no-dfp; "baseline-sv, label weight 100" is sv100, baseline-sv with its
    label-supervised task at weight 100; "full, triplet-scc margin 10" is m10, the full model with
    the SCC triplet's margin at 10; "full (Intel)" is full, trained again on the Intel machines."""
    name = row.removesuffix(" (above)")
    intel = name.endswith(INTEL)
    name = name.removesuffix(INTEL)
    for pattern, prefix in VARIANTS.items():
        if match := pattern.fullmatch(name):
            return prefix + match.group(1).replace(",", ""), intel
    return PRESETS[name], intel


def rounded(x: float, places: str) -> set[str]:
    """``x`` to the ``places`` (``"0.1"``) as a reader would write it: a tie such as 79.55 (judge
    scores are counts over 500 sequences; Acc, a mean of two, is stored as 0.8474999999999999) may
    go either way, so both are accepted."""
    exact = Decimal(f"{x:.12g}")  # without the float's noise in the 16th digit
    return {str(exact.quantize(Decimal(places), rounding=r)) for r in (ROUND_HALF_UP, ROUND_HALF_DOWN)}


FORMATS = {  # column name: the figures' key, the scale a cell shows it at and the places it gives
    "appearance kept with z_f (%)": ("appearance", 100, "0.1"),
    "trouser colour (%)": ("bottom", 100, "0.1"),
    "direction kept with z_1:T (%)": ("direction", 100, "0.1"),
    "Acc (%)": ("Acc", 100, "0.1"),
    "IS": ("IS", 1, "0.001"),
    "H(y\\|x)": ("H(y|x)", 1, "0.001"),
    "recon. MSE": ("recon_mse", 1, "0.0001"),
    "referee on draws (nats)": ("referee_draws", 1, "0.1"),
}


def column_format(name: str) -> tuple[str, float, str]:
    """The format of a column; the referee's header may carry a note ("(nats; ≤ 0: none found)")."""
    return FORMATS["referee on draws (nats)" if name.startswith("referee on draws (nats") else name]


def run_cell(name: str, figures: dict) -> set[str]:
    """The cell of one run's figures under column ``name``, as a reader may round it."""
    if name == "KL z_f / z_1:T (nats)":
        return {f"{a} / {b}" for a in rounded(figures["kl_f_last100"], "1") for b in rounded(figures["kl_z_last100"], "1")}
    key, scale, places = column_format(name)
    return rounded(scale * figures[key], places)


def mean_cell(name: str, means: dict, count: int = 3) -> set[str]:
    """The ``mean ± std`` cell under column ``name`` of figures pooled over ``count`` seeds (or
    judge rounds)."""
    key, scale, places = column_format(name)
    mean, std, n = means[key]
    assert n == count, f"{key}: the mean of {n}, not {count}"
    return {f"{m} ± {s}" for m in rounded(scale * mean, places) for s in rounded(scale * std, places)}


def tables(header: re.Pattern = HEADER) -> list[tuple[int, int, list[list[str]]]]:
    """(line number, the header's number, rows with the header first) of each table whose header
    matches: the per-seed tables (their seed) or the three-seed means (their steps)."""
    lines = DOC.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        match = header.match(line)
        if match:
            rows, j = [split_row(line)], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(split_row(lines[j]))
                j += 1
            found.append((i + 1, int(match.group(1).replace(",", "")), rows))
    return found


def seed_entries(results: dict, seed: int, intel: bool = False) -> list[dict]:
    """The entries of one seed's runs, ``{family}_seed{seed}*`` for each of ``FAMILIES``; those of
    runs trained again on the Intel machines (``*_intel``) where ``intel``, else the others."""
    return [v for k, v in results.items()
            if re.fullmatch(rf"({'|'.join(FAMILIES)})_seed{seed}(_.*)?", k) and k.endswith("_intel") == intel]


def run_figures(results: dict, seed: int, preset: str, steps: int, intel: bool = False) -> dict:
    """The one entry of this seed that holds this preset at this step count (among the runs trained
    again on the Intel machines where ``intel``)."""
    found = [entry["runs"][preset][str(steps)] for entry in seed_entries(results, seed, intel)
             if str(steps) in entry.get("runs", {}).get(preset, {})]
    assert len(found) == 1, f"seed {seed}, {preset}, {steps} steps: {len(found)} entries in the JSON"
    return found[0]


def test_there_are_per_seed_tables():
    assert len(tables()) >= 6


@pytest.mark.parametrize("line, seed, rows", tables(), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_per_seed_table_is_the_json(line, seed, rows):
    results = load(SPRITES_CPU["twice the conv channels"])
    header, body = rows[0], rows[1:]
    assert header[1] == "steps"
    for row in body:
        assert len(row) == len(header), f"docs/results.md:{line}: row {row[0]!r} has {len(row)} cells"
        preset, intel = run_of(row[0])
        steps = int(row[1].strip("*").replace(",", ""))
        figures = run_figures(results, seed, preset, steps, intel)
        for name, cell in zip(header[2:], row[2:]):
            assert cell.strip("*") in run_cell(name, figures), (
                f"docs/results.md:{line}: seed {seed}, {row[0]}, {steps} steps, {name!r}")


def seed_means(results: dict, preset: str, steps: int, intel: bool = False) -> dict:
    """The three-seed means of one preset at one step count: the full model's and the baseline's in
    ``longer_3600_seeds_0_1_2``, the others' in the ``seeds_0_1_2`` of their seed-2 entry
    (``longer_3600_seed2_no_scc_no_mi``, ``label_weight_seed2``, ...); those of runs trained again
    on the Intel machines in the ``seeds_0_1_2`` of their ``*_seed2_intel`` entry where ``intel``
    (``longer_3600_seed2_intel``, ``scc_margin_seed2_intel``, ``kl_weighting_seed2_intel``)."""
    pools = [] if intel else [v for k, v in results.items() if re.fullmatch(r"longer_\d+_seeds_0_1_2", k)]
    pools += [entry["seeds_0_1_2"] for entry in seed_entries(results, 2, intel) if "seeds_0_1_2" in entry]
    found = [pool[preset][str(steps)] for pool in pools if str(steps) in pool.get(preset, {})]
    assert len(found) == 1, f"{preset}, {steps} steps: {len(found)} three-seed means in the JSON"
    return found[0]


def test_there_are_mean_tables():
    assert len(tables(MEANS_HEADER)) >= 2


@pytest.mark.parametrize("line, steps, rows", tables(MEANS_HEADER), ids=lambda v: str(v) if isinstance(v, int) else "")
def test_mean_table_is_the_json(line, steps, rows):
    results = load(SPRITES_CPU["twice the conv channels"])
    header, body = rows[0], rows[1:]
    for row in body:
        assert len(row) == len(header), f"docs/results.md:{line}: row {row[0]!r} has {len(row)} cells"
        preset, intel = run_of(row[0])
        means = seed_means(results, preset, steps, intel)
        for name, cell in zip(header[1:], row[1:]):
            want = mean_cell(name, means)
            assert cell.strip("*") in want, f"docs/results.md:{line}: {row[0]}, {name!r}: {cell} not in {want}"


ROUNDS_HEADER = re.compile(r"^\| re-scored over (\d) rounds \|")
ROUNDS_ROW = re.compile(r"(.+), seed (\d)")  # "baseline-sv, label weight 1, seed 2"


def test_rounds_table_is_the_json():
    """The table of checkpoints scored again over N rounds says what ``judge_rounds`` says: the
    appearance and the direction as mean ± std over the rounds, the Acc of all rounds, and that of
    round 0 as the per-seed tables report it for that checkpoint."""
    results = load(SPRITES_CPU["twice the conv channels"])
    found = tables(ROUNDS_HEADER)
    assert len(found) == 1
    line, rounds, rows = found[0]
    header = rows[0]
    assert header[2:] == ["appearance kept with z_f (%)", "direction kept with z_1:T (%)",
                          f"Acc (%), {rounds} rounds", "Acc (%), round 0 (above)"]
    for row in rows[1:]:
        name, seed = ROUNDS_ROW.fullmatch(row[0]).groups()
        (preset, intel), steps = run_of(name), row[1].replace(",", "")
        figures = results["judge_rounds"]["runs"][preset][f"seed{seed}"][steps]
        entry, *path = figures["rescored"].split(".")  # "label_weight_seed1.runs.sv100.2400"
        rescored = results[entry]
        for key in path:
            rescored = rescored[key]
        assert rescored is run_figures(results, int(seed), preset, int(steps), intel), figures["rescored"]
        assert figures["Acc_one_round"] == rescored["Acc"]
        want = [mean_cell(header[2], figures, rounds), mean_cell(header[3], figures, rounds),
                rounded(100 * figures["Acc"], "0.1"), rounded(100 * figures["Acc_one_round"], "0.1")]
        for column, cell, cells in zip(header[2:], row[2:], want):
            assert cell in cells, f"docs/results.md:{line}: {row[0]}, {steps} steps, {column!r}: {cell} not in {cells}"
