"""Training throughput: a plain fp32 reference loop against the project's training step, same model,
same process, same device; a scaling run; MI-MWS time and memory against the batch size M.

    python benchmarks/throughput.py recipes/sprites.toml --set data.root=../shared/data/lpc-sprites \
        --set train.batch_size=128 --steps 50 [--compile] [--scaling] [--out FILE]

Variants (each after ``--warmup`` steps, timed over ``--steps`` steps with the device synchronised
only at the ends):

- ``reference``: what the anchor code bases do: a host DataLoader (shuffled, 4 workers on CUDA), the
  model in float32, ``torch.optim.Adam`` with its defaults, and ``loss.item()`` every step.
- ``fast``: :class:`disentangle.training.Trainer`'s own step with the recipe's defaults for the
  device: on CUDA the training split held on the GPU and indexed there, bf16 autocast for the
  encoder and decoder, fused Adam, loss terms read every ``train.log_every`` steps.
- ``fast+compile`` (``--compile``): the same with ``train.compile = "on"``.
- ``fast+graph`` (``--cuda-graph``, CUDA only): the same with ``train.cuda_graph = "on"``, the whole
  step replayed from one CUDA graph.
- ``fast+nhwc`` / ``fast+nchw`` (``--layouts``): the same with ``train.channels_last`` the other way
  round from the device's default (NHWC on CUDA, NCHW elsewhere).

Prints a table and writes JSON with the device named (default
``benchmarks/results/throughput-<device>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Iterator

import torch
from rich.console import Console
from rich.table import Table

import disentangle
from disentangle.training import Trainer, build_pipeline, resolve_device, seed_everything
from disentangle.training.data import IndexedSplit, epoch_batches
from disentangle.training.rundir import StepLog


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def timed(step, n_warmup: int, n_steps: int, device: torch.device) -> float:
    for _ in range(n_warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    sync(device)
    return time.perf_counter() - start


def reference(recipe: disentangle.Recipe, device: torch.device, n_steps: int, n_warmup: int) -> dict[str, Any]:
    """The plain fp32 loop (see the module docstring)."""
    seed_everything(recipe.train.seed)
    pipe = build_pipeline(recipe, device)
    for obj in pipe.objectives.values():
        obj.prepare(pipe.data, pipe.ctx)
    model, objectives = pipe.model.train(), pipe.objectives.train()
    params = list(model.parameters()) + list(objectives.parameters())
    opt = torch.optim.Adam(params, lr=recipe.train.lr)
    workers = min(4, os.cpu_count() or 1) if device.type == "cuda" else 0
    loader = torch.utils.data.DataLoader(IndexedSplit(pipe.data.split("train")), batch_size=recipe.train.batch_size,
                                         shuffle=True, drop_last=True, num_workers=workers,
                                         persistent_workers=workers > 0)

    def forever() -> Iterator[dict[str, Any]]:
        while True:
            yield from loader

    batches = forever()

    def step() -> None:
        batch = next(batches)
        batch = {"x": batch["x"].to(device), "index": batch["index"].to(device),
                 "labels": {k: v.to(device) for k, v in batch["labels"].items()}}
        out = model(batch["x"])
        loss = out.vae_loss
        for name, obj in objectives.items():
            loss = loss + pipe.weights[name] * obj.loss(batch, out, model)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    reset_memory(device)
    seconds = timed(step, n_warmup, n_steps, device)
    return {"variant": "reference", "seconds": seconds, "peak_mb": peak_mb(device),
            "parameters": sum(p.numel() for p in model.parameters())}


def endless(trainer: Trainer) -> Iterator[dict[str, Any]]:
    """The trainer's batches, epoch after epoch."""
    cfg, epoch = trainer.recipe.train, 0
    while True:
        yield from trainer.batches(epoch_batches(len(trainer.split), cfg.batch_size, cfg.seed, epoch), seed=epoch)
        epoch += 1


def fast(recipe: disentangle.Recipe, device: torch.device, n_steps: int, n_warmup: int,
         compile: bool = False, channels_last: str | None = None, cuda_graph: bool = False) -> dict[str, Any]:
    """The project's own training step (see the module docstring); ``channels_last`` ``"on"`` or
    ``"off"`` overrides the recipe's."""
    import attrs

    train_cfg = attrs.evolve(recipe.train, compile="on" if compile else "off",
                             cuda_graph="on" if cuda_graph else "off")
    if channels_last is not None:
        train_cfg = attrs.evolve(train_cfg, channels_last=channels_last)
    recipe = attrs.evolve(recipe, train=train_cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, Path(tmp) / "run", resume=False, device=device, world=disentangle.World(),
                          registry=disentangle.get_registry(), cache_dir=None,
                          console=Console(stderr=True, quiet=True))
        trainer.setup()
    trainer.pipe.model.train()
    trainer.pipe.objectives.train()
    cfg = recipe.train
    batches = endless(trainer)
    log = StepLog(None)

    def step() -> None:
        log.record(trainer.step + 1, 0, trainer.train_step(next(batches)))
        if trainer.step % cfg.log_every == 0:
            bad, _ = log.flush()
            assert bad is None, f"non-finite loss at step {bad}"

    reset_memory(device)
    seconds = timed(step, n_warmup, n_steps, device)
    log.flush()
    variant = "fast" + ("+compile" if compile else "") + ("+graph" if cuda_graph else "") + \
        ({"on": "+nhwc", "off": "+nchw"}[channels_last] if channels_last is not None else "")
    return {"variant": variant, "seconds": seconds, "peak_mb": peak_mb(device),
            "batches": trainer.batches.kind, **trainer.fast, "last_loss": log.last.get("loss")}


def profile(recipe: disentangle.Recipe, device: torch.device, n_steps: int = 10) -> dict[str, Any]:
    """Where the fast step's time goes: host (CPU) time against device time, and the top operators."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(recipe, Path(tmp) / "run", resume=False, device=device, world=disentangle.World(),
                          registry=disentangle.get_registry(), cache_dir=None, console=Console(stderr=True, quiet=True))
        trainer.setup()
    batches = endless(trainer)
    for _ in range(3):
        trainer.train_step(next(batches))
    sync(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    start = time.perf_counter()
    with torch_profile(activities=activities) as prof:
        for _ in range(n_steps):
            trainer.train_step(next(batches))
        sync(device)
    wall = time.perf_counter() - start
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=25)
    print(table)
    events = prof.key_averages()
    return {"steps": n_steps, "wall_ms_per_step": 1000 * wall / n_steps,
            "device_ms_per_step": sum(e.self_device_time_total for e in events) / 1000 / n_steps
            if device.type == "cuda" else None,
            "kernel_launches_per_step": sum(e.count for e in events if e.key.startswith("cudaLaunchKernel")) / n_steps
            if device.type == "cuda" else None, "table": table}


def mi_mws_scaling(device: torch.device, sizes: list[int], t: int = 8, zf: int = 256, zt: int = 32,
                   repeats: int = 10) -> list[dict[str, Any]]:
    """Forward + backward time and peak memory of the MI-MWS estimate against the batch size M."""
    comp = disentangle.get_registry().get("regularizer", "mi-mws")
    rows = []
    for m in sizes:
        reg = comp.build(comp.config(), disentangle.BuildContext(cache_dir=Path("."), dataset_size=9000,
                                                                  batch_size=m))
        g = torch.Generator(device="cpu").manual_seed(m)
        leaves = {k: torch.randn(*shape, generator=g).to(device).requires_grad_()
                  for k, shape in (("f_mean", (m, zf)), ("f_logvar", (m, zf)), ("z_mean", (m, t, zt)),
                                   ("z_logvar", (m, t, zt)))}
        out = types.SimpleNamespace(**leaves, f=leaves["f_mean"] + 0.1, z=leaves["z_mean"] + 0.1)

        def step() -> None:
            reg.loss({}, out, None).backward()

        reset_memory(device)
        seconds = timed(step, 2, repeats, device)
        rows.append({"M": m, "ms": 1000 * seconds / repeats, "peak_mb": peak_mb(device)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reference-steps", type=int, default=None, help="default: --steps")
    ap.add_argument("--compile", action="store_true", help="also time train.compile = \"on\"")
    ap.add_argument("--cuda-graph", action="store_true", help="also time train.cuda_graph = \"on\" (CUDA)")
    ap.add_argument("--layouts", action="store_true",
                    help="also time train.channels_last the other way round from the device's default")
    ap.add_argument("--scaling", action="store_true", help="fast path over batch sizes; MI-MWS over M")
    ap.add_argument("--batch-sizes", default="32,64,128,256")
    ap.add_argument("--profile", action="store_true", help="also profile 10 fast steps (top kernels)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    device = resolve_device(args.device)
    recipe = disentangle.load_recipe(args.recipe, args.overrides)
    b = recipe.train.batch_size
    out = Path(args.out or f"benchmarks/results/throughput-{device.type}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [reference(recipe, device, args.reference_steps or args.steps, args.warmup),
            fast(recipe, device, args.steps, args.warmup)]
    rows[0]["steps"] = args.reference_steps or args.steps
    rows[1]["steps"] = args.steps
    result: dict[str, Any] = {
        "recipe": args.recipe, "overrides": args.overrides, "device": str(device), "device_name": device_name(device),
        "torch": torch.__version__, "batch_size": b, "rows": rows}

    def save() -> None:  # after every stage, so a run stopped early keeps what it measured
        for r in rows:
            r["steps_per_s"] = r["steps"] / r["seconds"]
            r["sequences_per_s"] = r["steps_per_s"] * b
            r["ratio"] = r["steps_per_s"] / rows[0]["steps_per_s"]
        out.write_text(json.dumps(result, indent=2))

    save()
    if args.cuda_graph and device.type == "cuda":
        rows.append({**fast(recipe, device, args.steps, args.warmup, cuda_graph=True), "steps": args.steps})
        save()
    if args.layouts:
        from disentangle.training.precision import enabled

        flipped = "off" if enabled(recipe.train.channels_last, device) else "on"
        rows.append({**fast(recipe, device, args.steps, args.warmup, channels_last=flipped), "steps": args.steps})
        save()
    if args.profile:
        result["profile"] = profile(recipe, device)
        save()
    console = Console()
    if args.scaling:
        import attrs

        scale_rows = []
        for bs in [int(v) for v in args.batch_sizes.split(",")]:
            r2 = attrs.evolve(recipe, train=attrs.evolve(recipe.train, batch_size=bs))
            row = fast(r2, device, args.steps, args.warmup)
            scale_rows.append({"batch_size": bs, "steps_per_s": args.steps / row["seconds"],
                               "sequences_per_s": args.steps * bs / row["seconds"], "peak_mb": row["peak_mb"]})
            result["batch_scaling"] = scale_rows
            save()
        result["mi_mws"] = mi_mws_scaling(device, [64, 128, 256, 512, 1024] if device.type == "cuda" else [16, 32, 64])
        save()
    if args.compile:  # last: compiling takes a while
        rows.append({**fast(recipe, device, args.steps, args.warmup, compile=True), "steps": args.steps})
        save()
    table = Table(title=f"training throughput: {Path(args.recipe).stem}, batch {b}, {device_name(device)}")
    for col in ("variant", "steps/s", "seq/s", "peak MB", "ratio"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["variant"], f"{r['steps_per_s']:.2f}", f"{r['sequences_per_s']:.0f}",
                      f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-", f"{r['ratio']:.2f}x")
    console.print(table)
    if args.scaling:
        t2 = Table(title="fast path against the batch size")
        for col in ("batch", "steps/s", "seq/s", "peak MB"):
            t2.add_column(col)
        for r in result["batch_scaling"]:
            t2.add_row(str(r["batch_size"]), f"{r['steps_per_s']:.2f}", f"{r['sequences_per_s']:.0f}",
                       f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-")
        console.print(t2)
        t3 = Table(title="MI-MWS forward + backward against M (T 8, z_f 256, z_t 32)")
        for col in ("M", "ms", "peak MB"):
            t3.add_column(col)
        for r in result["mi_mws"]:
            t3.add_row(str(r["M"]), f"{r['ms']:.2f}", f"{r['peak_mb']:.0f}" if r["peak_mb"] is not None else "-")
        console.print(t3)
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    try:
        main()
    except disentangle.DisentangleError as exc:  # bad input: a message, not a traceback
        raise SystemExit(f"error: {exc}") from None
