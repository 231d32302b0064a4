"""The speaker-verification EER table of finished speech runs (one run per seed), mean ± std over runs.

    disentangle run recipes/fsdd.toml --run-dir runs/fsdd-s0 --set train.seed=0
    python benchmarks/speech_eer.py runs/fsdd-s0 [runs/fsdd-s1 ...] --out benchmarks/results/speech-eer-fsdd-cpu.json

Reads each run's ``eval.json`` (the ``eer`` metric), ``environment.json`` (the machine) and
``metrics.jsonl`` (steps); prints the table (z_f, z_1:T, the mean-MFCC baseline; the speaker EER on all
trials and on different-content trials, the content EER on pairs of speakers) and writes JSON with every
run's numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROWS = (("z_f", "eer/z_f"), ("z_1:T", "eer/z_t"), ("mean MFCC (baseline)", "eer/mfcc"))


def read_run(run: Path) -> dict:
    for name in ("eval.json", "environment.json", "metrics.jsonl"):
        if not (run / name).is_file():
            raise SystemExit(f"{run / name}: not found. Is {run} a finished run directory? "
                             f"(`disentangle run` writes it; `disentangle evaluate {run}` writes eval.json again)")
    evaluation = json.loads((run / "eval.json").read_text())
    metrics = evaluation.get("metrics", evaluation)
    eer = next((v for k, v in metrics.items() if k == "eer" or k.startswith("eer")), None)
    if eer is None:
        raise SystemExit(f"{run}/eval.json has no eer metric")
    env = json.loads((run / "environment.json").read_text())
    steps = sum(1 for _ in (run / "metrics.jsonl").open())
    return {"run": str(run), "eer": eer, "steps": steps, "device": env.get("device"),
            "device_name": env.get("gpu", env.get("platform"))}  # the wall time is in the console log only: --note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", default="benchmarks/results/speech-eer.json")
    ap.add_argument("--note", default="", help="free text stored in the JSON (e.g. the machine and its load)")
    args = ap.parse_args()
    runs = [read_run(r) for r in args.runs]
    table = Table(title=f"speaker-verification EER (%), {len(runs)} run(s): mean ± std")
    table.add_column("code")
    table.add_column("all trials", justify="right")
    table.add_column("different-content trials", justify="right")
    table.add_column("content EER (pairs of speakers)", justify="right")

    def cell(key: str) -> str:
        vals = [100 * r["eer"][key] for r in runs if key in r["eer"]]
        if not vals:
            return "-"
        return f"{np.mean(vals):.1f}" + (f" ± {np.std(vals):.1f}" if len(vals) > 1 else "")

    summary = {}
    for name, key in ROWS:
        content_key = "content-" + key  # content-eer/<code>: low when the code holds the words
        table.add_row(name, cell(key), cell(f"{key}/content_differs"), cell(content_key))
        for k in (key, f"{key}/content_differs", content_key):
            vals = [r["eer"][k] for r in runs if k in r["eer"]]
            if vals:
                summary[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "n": len(vals)}
    Console().print(table)
    first = runs[0]["eer"]
    print(f"trials: {first.get('trials', 0):.0f} ({first.get('target_trials', 0):.0f} same-speaker), "
          f"different-content: {first.get('content_differs_trials', 0):.0f}; between speakers: "
          f"{first.get('content_trials', 0):.0f} ({first.get('content_target_trials', 0):.0f} same content); "
          f"device: {runs[0]['device_name']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "runs": runs, "note": args.note,
                                          "host": platform.node() and platform.platform()}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
