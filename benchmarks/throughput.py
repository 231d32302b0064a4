"""Training throughput (steps/s, sequences/s) of recipes on each available device.

    python benchmarks/throughput.py recipes/quickstart.toml \
        recipes/sprites.toml --set-for sprites data.root=../shared/data/lpc-sprites --steps 20

Prints a table and writes JSON (default benchmarks/throughput.json). Synthetic batches of the
recipe's shapes are used after the real data is built, so disk speed does not enter the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from disentangle import load_recipe
from disentangle import build_pipeline


def measure(recipe_path: str, overrides: list[str], device: str, steps: int, warmup: int = 3) -> dict:
    recipe = load_recipe(recipe_path, overrides)
    pipe = build_pipeline(recipe, device)
    for obj in pipe.objectives.values():
        obj.prepare(pipe.data, pipe.ctx)
    model, objectives = pipe.model.train(), pipe.objectives.train()
    params = list(model.parameters()) + list(objectives.parameters())
    opt = torch.optim.Adam(params, lr=recipe.train.lr)
    split = pipe.data.split("train")
    b = recipe.train.batch_size
    x = torch.stack([split[i]["x"] for i in range(b)]).to(device)
    batch = {"x": x, "index": torch.arange(b, device=device), "labels": {}}

    def step():
        out = model(x)
        loss = out.vae_loss + sum(pipe.weights[n] * o.loss(batch, out, model) for n, o in objectives.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"recipe": recipe_path, "overrides": overrides, "device": device,
            "device_name": torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()}, {os.cpu_count()} cores",
            "threads": torch.get_num_threads(), "batch_size": b, "steps": steps,
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps_per_s": steps / seconds, "sequences_per_s": steps * b / seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="+")
    ap.add_argument("--set-for", nargs=2, action="append", default=[], metavar=("STEM", "KEY=VALUE"),
                    help="override for the recipe whose file stem is STEM")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--devices", default="auto", help="comma list of cpu,cuda or auto")
    ap.add_argument("--out", default="benchmarks/throughput.json")
    args = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" \
        else args.devices.split(",")
    rows = []
    for path in args.recipes:
        overrides = [kv for stem, kv in args.set_for if stem == Path(path).stem]
        for dev in devices:
            rows.append(measure(path, overrides, dev, args.steps))
    table = Table(title="training throughput")
    for col in ("recipe", "device", "batch", "params", "steps/s", "seq/s"):
        table.add_column(col)
    for r in rows:
        table.add_row(Path(r["recipe"]).stem, f"{r['device']} ({r['device_name']})", str(r["batch_size"]),
                      f"{r['parameters'] / 1e6:.2f}M", f"{r['steps_per_s']:.2f}", f"{r['sequences_per_s']:.0f}")
    Console().print(table)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
