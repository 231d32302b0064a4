"""Train a recipe end to end and report time, the loss curve and the evaluation metrics.

    python benchmarks/quality.py recipes/quickstart.toml [--set key=value ...] [--out benchmarks/quality.json]

Prints a table (loss terms at a few steps, then the metrics) and writes JSON with the whole curve
subsampled to at most 200 points.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from disentangle import DisentangleError, load_recipe, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default="benchmarks/quality.json")
    ap.add_argument("--run-dir", default=None, help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.run_dir) if args.run_dir else Path(tmp) / "run"
        start = time.perf_counter()
        result = train(recipe, run_dir, device=args.device)
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        env = json.loads((run_dir / "environment.json").read_text())
    every = max(1, len(rows) // 200)
    curve = rows[::every] + ([rows[-1]] if rows and rows[-1] is not rows[::every][-1] else [])
    console = Console()
    table = Table(title=f"{args.recipe}: loss curve")
    keys = [k for k in rows[0] if k not in ("step", "epoch", "vae")]
    for col in ["step", *keys]:
        table.add_column(col)
    marks = sorted({1, *(len(rows) * q // 4 for q in (1, 2, 3)), len(rows)} - {0})
    for r in (rows[m - 1] for m in marks):
        table.add_row(str(r["step"]), *(f"{r[k]:.4g}" for k in keys))
    console.print(table)
    metrics = Table(title="evaluation")
    metrics.add_column("metric")
    metrics.add_column("value")
    for name, values in result.eval.items():
        for k, v in values.items():
            metrics.add_row(f"{name}/{k}", f"{v:.4f}")
    console.print(metrics)
    console.print(f"wall {wall:.1f} s, training {result.seconds:.1f} s, {result.step / result.seconds:.2f} steps/s")
    Path(args.out).write_text(json.dumps({"recipe": args.recipe, "overrides": args.overrides, "wall_s": wall,
                                          "device": env["device"], "device_name": env.get("gpu", env["platform"]),
                                          "autocast": env.get("autocast"), "batches": env.get("batches"),
                                          "train_s": result.seconds, "steps": result.step, "eval": result.eval,
                                          "curve": curve}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    try:
        main()
    except DisentangleError as exc:  # bad input: a message, not a traceback
        raise SystemExit(f"error: {exc}") from None
