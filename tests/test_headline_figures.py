"""The headline tables say what the results' JSON says.

The first table of docs/results.md and the README's status table carry the figures a reader
quotes. Each figure of their "here" column (decimals and percentages, not counts of steps or
seeds) is derived here from the committed JSON under benchmarks/results/ (the summaries' mean ±
population std over seeds, formatted as the table prints it), in the order the cell gives them,
so that a number typed by hand, left behind by a rerun or copied into one table and not the other
fails. The same for every cell of docs/results.md's Table 1 in the paper's shape. The paper's
columns are compared cell by cell with the paper's Tables 1 and 3, read from its text where
../shared/paper/ is present.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAPER = ROOT.parent / "shared" / "paper"

PRESETS = ("full", "baseline", "baseline-sv", "no-dfp", "no-scc", "no-mi")  # the tables' order


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}"


def pm(mean_std, digits: int = 1) -> list[str]:
    """``[mean, std]`` (fractions) as the two numbers of ``mean ± std`` in percent."""
    return [pct(mean_std[0], digits), pct(mean_std[1], digits)]


def ceiling(values: list[float]) -> list[str]:
    """A judge's ceilings as the tables give them: ``lo–hi%`` with the fewest digits that hold them."""
    def short(x: float) -> str:
        return f"{100 * x:.1f}".removesuffix(".0")
    lo, hi = min(values), max(values)
    return [short(lo)] if lo == hi else [short(lo), short(hi)]


@functools.cache
def sprites_gpu_judge() -> dict:
    return json.loads((RESULTS / "h200" / "sprites-fg1000-20ep" / "eval.json").read_text())["judge"]


@functools.cache
def table1_summary():
    """benchmarks/table1_summary.py as a module (a script, not part of the package), loaded once."""
    spec = importlib.util.spec_from_file_location("table1_summary", ROOT / "benchmarks" / "table1_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sprites_gpu_acc() -> str:
    """Section 3's Acc, by the formula of benchmarks/table1_summary.py --paper dynamic."""
    judge = sprites_gpu_judge()
    return pct(table1_summary().paper_acc(judge["static/acc/mean"], judge["dynamic/dynamic/Acc/mean"]), 2)


def sprites_gpu() -> list[str]:
    """Section 3: one seed, 20 epochs on an H200: Acc, IS, H(y|x), H(y) and the judge's ceiling."""
    judge = sprites_gpu_judge()
    return [sprites_gpu_acc(), *(f"{judge[f'dynamic/dynamic/{m}/mean']:.3f}" for m in ("IS", "H(y|x)", "H(y)")),
            *ceiling([v for k, v in judge.items() if k.endswith("/ceiling")])]


SPRITES_CPU = {  # the CPU tables of Table 1 and the ablation, 3 seeds each
    "section 6": "sprites-table1-wide-reduced-cpu.json",
    "4,800 steps": "sprites-wide-4800-reduced-cpu.json",
    "twice the conv channels": "sprites-conv32-reduced-cpu.json",
}


def sprites_cpu_acc(which: str) -> dict[str, list[str]]:
    summary = load(SPRITES_CPU[which])["summary"]
    return {p: pm(summary[p]["Acc"]) for p in PRESETS}


def sprites_longer_acc() -> dict[str, list[str]]:
    """Half the conv channels continued to 3,600 steps: the full model and the baseline, 3 seeds."""
    summary = load(SPRITES_CPU["twice the conv channels"])["longer_3600_seeds_0_1_2"]
    return {p: pm(summary[p]["3600"]["Acc"]) for p in ("full", "baseline")}


def sprites_longer_ablation_acc() -> dict[str, list[str]]:
    """Baseline-sv, No-DFP, No-SCC and No-MI continued to 3,600 steps, 3 seeds (the full model's and
    the baseline's are sprites_longer_acc's)."""
    results = load(SPRITES_CPU["twice the conv channels"])
    summary = {**results["longer_3600_seed2_baseline_sv_no_dfp"]["seeds_0_1_2"],
               **results["longer_3600_seed2_no_scc_no_mi"]["seeds_0_1_2"]}
    return {p: pm(summary[p]["3600"]["Acc"]) for p in ("baseline-sv", "no-dfp", "no-scc", "no-mi")}


def sprites_label_weight_acc() -> list[str]:
    """Baseline-sv with its label task at weight 100, at twice the conv channels and 3,600 steps,
    3 seeds."""
    means = load(SPRITES_CPU["twice the conv channels"])["label_weight_seed2"]["seeds_0_1_2"]
    return pm(means["sv100"]["3600"]["Acc"])


def sprites_cpu() -> list[str]:
    """All six presets at half the conv channels and 3,600 steps, then the full model's IS, H(y|x)
    and H(y) there (mean ± std of its three seeds), the judge's ceiling, and baseline-sv there at
    label weight 100. The other scales are in Table 1 in the paper's shape (table1_expected)."""
    results = load(SPRITES_CPU["twice the conv channels"])
    longer = {**sprites_longer_acc(), **sprites_longer_ablation_acc()}
    out = [x for p in PRESETS for x in longer[p]]
    for metric in ("IS", "H(y|x)", "H(y)"):
        seeds = [results[f"longer_3600_seed{s}"]["runs"]["full"]["3600"][metric] for s in (0, 1, 2)]
        out += [f"{statistics.mean(seeds):.3f}", f"{statistics.pstdev(seeds):.3f}"]
    # the judge that scored all six at 3,600 steps repeats this one's epoch losses and ceilings
    # (longer_3600_seed0["judge"])
    out += ceiling(list(results["judge_no_scc_no_mi_seeds_1_2"]["ceiling"].values()))
    return out + sprites_label_weight_acc()


def smmnist_gpu_acc() -> dict[str, list[str]]:
    summary = load("h200/smmnist-table1-gpu.json")["summary"]
    return {p: pm(summary[f"{p}, 2500 steps"]["static/acc"]) for p in ("full", "baseline")}


def smmnist_gpu() -> list[str]:
    """The H200 pass at the recipe's model size, 2,500 steps, 3 seeds: the full model's Acc, IS,
    H(y|x), H(y) (the mean of the two digit heads), the baseline's Acc, the judge's ceiling."""
    full = load("h200/smmnist-table1-gpu.json")["summary"]["full, 2500 steps"]
    heads = ("digit1", "digit2")
    mean_of_heads = [sum(full[f"static/{h}/{m}"][0] for h in heads) / 2 for m in ("IS", "H(y|x)", "H(y)")]
    ceilings = [full[f"static/{h}/ceiling"][0] for h in heads]
    acc = smmnist_gpu_acc()
    return [*acc["full"], *(f"{v:.3f}" for v in mean_of_heads), *acc["baseline"], f"{100 * sum(ceilings) / 2:.0f}"]


def smmnist_cpu_acc() -> dict[str, list[str]]:
    table = load("smmnist-table1-reduced-cpu.json")["summary"]["Table 1 and the ablation, one judge (B)"]["table"]
    return {p: pm(table[p]["mean_std"]["acc_keeping_z_f"]) for p in PRESETS}


def smmnist_cpu() -> list[str]:
    """Table 1 and the ablation at 3,000 steps, every seed scored by judge B, and that judge's ceiling."""
    ceilings = load("smmnist-table1-reduced-cpu.json")["judge_b"]["test_accuracy"]
    return [*(x for v in smmnist_cpu_acc().values() for x in v),
            f"{100 * ceilings['digit1']:.0f}", f"{100 * ceilings['digit2']:.0f}"]


def speech() -> list[str]:
    """FSDD with recipes/fsdd.toml and the stand-in with recipes/timit.toml, 3 seeds each."""
    def eers(summary: dict) -> list[str]:
        z = [summary[f"eer/{c}"] for c in ("z_f", "z_t")]
        return [x for s in z for x in pm([s["mean"], s["std"]])] + [pct(summary["eer/mfcc"]["mean"])]
    standin = load("speech-eer-standin-betaz-cpu.json")["variants"]
    now = [v for k, v in standin.items() if k.startswith("test: the recipe as it is now")]
    assert len(now) == 1, "speech-eer-standin-betaz-cpu.json: one 'test: the recipe as it is now' variant"
    return eers(load("speech-eer-fsdd-cpu.json")["summary"]) + eers(now[0]["summary"])


def quickstart() -> list[str]:
    """The quickstart's Table 1 (3 seeds), then the first run's seed means (2026-11-27)."""
    rows, first = load("quickstart-table1-cpu.json")["rows"], load("quickstart-table1-2026-11-27-cpu.json")["rows"]
    kept = ("judge/static/acc", "judge/dynamic/acc")
    out = [x for p in ("full", "baseline") for k in kept for x in pm(rows[p][k])]
    out += [pct(first[p][k][0]) for p in ("full", "baseline") for k in kept]
    return out + ceiling([v[0] for k, v in rows["full"].items() if k.endswith("/ceiling")])


EXPECTED = {  # the first cell of a row -> its "here" figures
    "Sprites, full model": sprites_gpu,
    "Sprites Table 1 and ablation": sprites_cpu,
    "SMMNIST, full model": smmnist_gpu,
    "SMMNIST Table 1 and ablation": smmnist_cpu,
    "TIMIT speaker EER": speech,
    "quickstart": quickstart,
}


def split_row(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def markdown_table(path: Path, after: str | None = None, header: str | None = None) -> dict[str, dict[str, str]]:
    """The Markdown table whose header line starts with ``header``, or the first one after the line
    ``after``: {first cell: {column name: cell}}."""
    lines = path.read_text().splitlines()
    if header is not None:
        first = next(i for i, line in enumerate(lines) if line.startswith(header))
    else:
        start = lines.index(after)
        first = next(i for i, line in enumerate(lines) if i > start and line.startswith("|"))
    rows, i = [], first
    while i < len(lines) and lines[i].startswith("|"):
        rows.append(split_row(lines[i]))
        i += 1
    columns, body = rows[0], rows[2:]
    for row in body:
        assert len(row) == len(columns), f"{path.name}: a row of {len(row)} cells under {len(columns)} columns: {row[0]!r}"
    firsts = [row[0] for row in body]
    assert len(set(firsts)) == len(firsts), f"{path.name}: two rows start with the same cell in {firsts}"
    return {row[0]: dict(zip(columns, row)) for row in body}


def figures(cell: str) -> list[str]:
    """The numbers a reader reads in a cell: decimals, and whole percentages (``94%``, ``95–100%``);
    not link targets, counts of steps or speakers, nor the 1 of z_1:T."""
    text = re.sub(r"\]\([^)]*\)", "]", cell)
    return re.findall(r"(?<![\w.])(\d+\.\d+|\d+(?=%|–\d))", text)


TABLES = {
    "docs/results.md": lambda: markdown_table(ROOT / "docs" / "results.md", "# Results: where we stand next to the paper"),
    "README.md": lambda: markdown_table(ROOT / "README.md", "## Status against the paper"),
}


def row_of(table: dict[str, dict[str, str]], prefix: str, where: str) -> dict[str, str]:
    found = [row for first, row in table.items() if first.startswith(prefix)]
    assert len(found) == 1, f"{where}: one headline row starting {prefix!r}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("where", TABLES)
@pytest.mark.parametrize("prefix", EXPECTED)
def test_headline_figures_are_the_json(where, prefix):
    row = row_of(TABLES[where](), prefix, where)
    assert figures(row["here"]) == EXPECTED[prefix](), f"{where}, row {prefix!r}"


@pytest.mark.parametrize("where", TABLES)
def test_every_headline_row_is_checked(where):
    table = TABLES[where]()
    unchecked = [first for first in table if not any(first.startswith(p) for p in EXPECTED)]
    assert not unchecked, f"{where}: add these headline rows to EXPECTED: {unchecked}"


def paper_tables() -> dict:
    """The paper's Table 1 ``{model: {dataset: [Acc, IS, H(y|x), H(y)]}}`` (model: full, baseline,
    baseline-sv) and Table 3's EERs ``{"z_f": ..., "z_1:T": ...}`` for S3VAE, as strings, read from
    the paper's text (tab-separated rows)."""
    text = "\n".join(p.read_text(errors="replace") for p in PAPER.glob("*.txt"))
    names = {"full model": "full", "baseline": "baseline", "baseline-sv*": "baseline-sv",
             "haseline-sv*": "baseline-sv"}  # the text's OCR reads "haseline-sv*"
    table1 = {}
    for line in text.splitlines():
        cells = line.split("\t")
        if cells[0].strip() in names and len(cells) == 13:
            values = [c.strip().removesuffix("%") for c in cells[1:]]
            table1[names[cells[0].strip()]] = {"SMMNIST": values[0:4], "Sprites": values[4:8], "MUG": values[8:12]}
    assert set(table1) == {"full", "baseline", "baseline-sv"}, "the paper's Table 1 rows were not found"
    ours = re.search(r"^Ours\tz_f\t64\t([\d.]+)%\n\t\S+\t64\t([\d.]+)%", text, flags=re.M)
    assert ours, "the paper's Table 3 row for S3VAE was not found"
    return {"table1": table1, "table3": {"z_f": ours.group(1), "z_1:T": ours.group(2)}}


def paper_expected() -> dict[str, list[str]]:
    """The "paper" cell of each headline row, from the paper's tables."""
    tables = paper_tables()
    t1, t3 = tables["table1"], tables["table3"]
    return {
        "Sprites, full model": t1["full"]["Sprites"],
        "Sprites Table 1 and ablation": [t1[m]["Sprites"][0] for m in ("full", "baseline", "baseline-sv")]
        + t1["full"]["Sprites"][1:],
        "SMMNIST, full model": t1["full"]["SMMNIST"] + [t1["baseline"]["SMMNIST"][0]],
        "SMMNIST Table 1 and ablation": [t1[m]["SMMNIST"][0] for m in ("full", "baseline", "baseline-sv")],
        "TIMIT speaker EER": [t3["z_f"], t3["z_1:T"]],
        "quickstart": [],
    }


needs_paper = pytest.mark.skipif(not PAPER.is_dir(),
                                 reason="the paper's text is not beside the repository (../shared/paper)")


@needs_paper
@pytest.mark.parametrize("where", TABLES)
def test_paper_column_is_the_papers_tables(where):
    table = TABLES[where]()
    for prefix, want in paper_expected().items():
        row = row_of(table, prefix, where)
        assert figures(row["paper" if "paper" in row else "paper (S3VAE)"]) == want, f"{where}, row {prefix!r}"


TABLE1_HEADER = "| model | Sprites: paper |"
TABLE1_NAMES = {"full": "full", "baseline": "baseline", "baseline-sv": "baseline-sv",
                "no-dfp": "No-DFP", "no-scc": "No-SCC", "no-mi": "No-MI"}


def table1_expected() -> dict[str, dict[str, list[str]]]:
    """The paper-shaped Table 1 of docs/results.md: {column prefix: {preset: figures}}; a preset
    missing from a column is a "–" there."""
    return {
        "Sprites: the recipe, 20 of 300 epochs": {"full": [sprites_gpu_acc()]},
        "Sprites: a quarter of the conv channels": sprites_cpu_acc("section 6"),
        "Sprites: the same, 4,800 steps": sprites_cpu_acc("4,800 steps"),
        "Sprites: half the conv channels": sprites_cpu_acc("twice the conv channels"),
        "Sprites: the same, 3,600 steps": {**sprites_longer_acc(), **sprites_longer_ablation_acc()},
        "SMMNIST: the recipe's model": smmnist_gpu_acc(),
        "SMMNIST: a small model": smmnist_cpu_acc(),
    }


def test_table1_in_the_papers_shape_is_the_json():
    table = markdown_table(ROOT / "docs" / "results.md", header=TABLE1_HEADER)
    assert list(table) == list(TABLE1_NAMES.values())
    expected = table1_expected()
    columns = list(table["full"])[1:]
    for column in columns:
        if column.endswith(": paper"):
            continue
        found = [prefix for prefix in expected if column.startswith(prefix)]
        assert len(found) == 1, f"docs/results.md, Table 1 in the paper's shape: which JSON gives column {column!r}?"
        for preset, name in TABLE1_NAMES.items():
            want = expected[found[0]].get(preset, [])
            assert figures(table[name][column]) == want, f"docs/results.md, Table 1, {name}, {column!r}"
    assert len(columns) == len(expected) + 2, "a column of Table 1 in the paper's shape is not checked"


@needs_paper
def test_table1_paper_columns_are_the_papers_table1():
    t1 = paper_tables()["table1"]
    table = markdown_table(ROOT / "docs" / "results.md", header=TABLE1_HEADER)
    for column, dataset in (("Sprites: paper", "Sprites"), ("SMMNIST: paper", "SMMNIST")):
        for preset, name in TABLE1_NAMES.items():
            want = [t1[preset][dataset][0]] if preset in t1 else []  # the paper's ablation is on MUG only
            assert figures(table[name][column]) == want, f"docs/results.md, Table 1, {name}, {column!r}"


def test_figures_reads_what_a_reader_reads():
    cell = ("88.2 ± 0.3 / 85.5, judge ceiling 99.8–100% ([below](#x-2400-steps)); 6 speakers, z_1:T, "
            "2,400 steps, ceilings 95–100%, 80% / 76%")
    assert figures(cell) == ["88.2", "0.3", "85.5", "99.8", "100", "95", "100", "80", "76"]
