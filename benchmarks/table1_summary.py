"""The compact Table 1 of a `benchmarks/table1.sh` sweep: one row per preset, judge Acc both ways
(mean ± std over seeds) and each factor's Acc / IS / H(y|x) / H(y).

    python benchmarks/table1_summary.py sweeps/quickstart/compare.csv --out benchmarks/results/quickstart-table1.json

Reads the `compare.csv` that `disentangle compare` wrote (group, metric, mean, std, n), prints two
Markdown tables (the first with the `dependence-probe` estimate where the runs were scored by it)
and writes them, with every number, as JSON. `--paper dynamic` adds the paper's Table 1 columns
for Sprites: Acc = the average of the two directions (appearance kept with z_f, the mean over the
static factors; the action class of the named dynamic factor kept with z_1:T), IS, H(y|x), H(y) of
that factor. The average is of the seed means: compare.csv has no per-seed values, so it has no ±
of its own. `--hardware` names the machine that trained the runs (default: this one).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
from pathlib import Path

ORDER = ("full", "baseline", "baseline-sv", "no-dfp", "no-scc", "no-mi")
SCORES = ("Acc", "IS", "H(y|x)", "H(y)")


COLUMNS = ("group", "metric", "mean", "std", "n")


def read(path: Path) -> dict[str, dict[str, tuple[float, float, int]]]:
    """compare.csv by preset and metric; a file that is not one stops with a message naming it."""
    rows: dict[str, dict[str, tuple[float, float, int]]] = {}
    hint = "\n  hint: pass the compare.csv that `disentangle compare RUN ... --out DIR` (or benchmarks/table1.sh) wrote"
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise SystemExit(f"error: {path} has no column {', '.join(missing)}: not a compare.csv{hint}")
            for r in reader:
                try:
                    value = (float(r["mean"]), float(r["std"]), int(float(r["n"])))
                except (TypeError, ValueError):
                    raise SystemExit(f"error: {path}, line {reader.line_num}: mean, std and n must be numbers"
                                     f"{hint}") from None
                rows.setdefault(r["group"].split("/")[0], {})[r["metric"]] = value
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"error: cannot read {path}: {getattr(exc, 'strerror', None) or exc}{hint}") from None
    return rows


def paper_acc(static_acc: float, dynamic_acc: float) -> float:
    """The paper's Sprites Acc: the mean of the appearance kept with z_f (the judge's Acc over the
    static factors) and the named dynamic factor kept with z_1:T."""
    return (static_acc + dynamic_acc) / 2


def cell(v: tuple[float, float, int] | None, scale: float = 1.0, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{scale * v[0]:.{digits}f} ± {scale * v[1]:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("compare_csv", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--paper", default=None, metavar="FACTOR",
                    help="the dynamic factor whose Acc / IS / H(y|x) / H(y) the paper reports (Sprites: dynamic)")
    ap.add_argument("--hardware", default=None, help="the machine that trained the runs")
    args = ap.parse_args()
    rows = read(args.compare_csv)
    presets = [p for p in ORDER if p in rows] + sorted(set(rows) - set(ORDER))
    factors = {keep: sorted({m.split("/")[2] for r in rows.values() for m in r
                             if m.startswith(f"judge/{keep}/") and m.count("/") == 3}) for keep in ("static", "dynamic")}
    runs = sorted({v[2] for r in rows.values() for v in r.values()})

    lines = ["| preset | Acc keeping z_f (%) | Acc keeping z_1:T (%) | reconstruction MSE | z_f → z_1:T (nats, dependence-probe) |",
             "|---|---|---|---|---|"]
    for p in presets:
        r = rows[p]
        lines.append(f"| {p} | {cell(r.get('judge/static/acc'), 100)} | {cell(r.get('judge/dynamic/acc'), 100)} | "
                     f"{cell(r.get('reconstruction/mse'), 1.0, 4)} | {cell(r.get('dependence-probe/nats'))} |")
    lines += ["", "| preset | kept | factor | " + " | ".join(s.replace("|", "\\|") for s in SCORES) + " |", "|---|---|---|" + "---|" * len(SCORES)]
    for p in presets:
        for keep, fs in factors.items():
            for f in fs:
                vals = [cell(rows[p].get(f"judge/{keep}/{f}/{s}"), 100 if s == "Acc" else 1.0, 1 if s == "Acc" else 3)
                        for s in SCORES]
                lines.append(f"| {p} | {'z_f' if keep == 'static' else 'z_1:T'} | {f} | " + " | ".join(vals) + " |")
    if args.paper:
        f = args.paper
        lines += ["", f"| preset | Acc (%, average of z_f kept and z_1:T kept: {f}) | IS | H(y\\|x) | H(y) |",
                  "|---|---|---|---|---|"]
        for p in presets:
            r = rows[p]
            static, dyn = r.get("judge/static/acc"), r.get(f"judge/dynamic/{f}/Acc")
            acc = "–" if static is None or dyn is None else f"{100 * paper_acc(static[0], dyn[0]):.2f}"
            lines.append(f"| {p} | {acc} | " + " | ".join(cell(r.get(f"judge/dynamic/{f}/{s}"), 1.0, 3)
                                                        for s in SCORES[1:]) + " |")
    text = "\n".join(lines)
    print(f"runs per preset: {runs}\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"source": str(args.compare_csv), "hardware": args.hardware or platform.platform(),
                                        "summarised_on": platform.platform(),
                                        "markdown": text, "rows": rows}, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
