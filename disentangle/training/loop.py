"""The training loop, as a recipe class: :meth:`Trainer.setup`, :meth:`Trainer.train`,
:meth:`Trainer.save_checkpoint`.

The loop never waits for the device between log points: loss terms, the gradient norm and the
non-finite check stay on the device and are read every ``train.log_every`` steps (and before
every checkpoint). A checkpoint is written only after every step before it was checked finite, so
a non-finite run never writes one.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import torch
from rich.console import Console
from torch import nn

from disentangle import distributed
from disentangle.errors import DisentangleError, TrainingError
from disentangle.io import atomic_write_text, prepare_cache_dir, progress_bar
from disentangle.recipe import Recipe, save_recipe
from disentangle.registry import Registry, get_registry
from disentangle.training import precision
from disentangle.training.build import build_pipeline, resolve_device
from disentangle.training.data import choose_batches, epoch_batches
from disentangle.training.graph import GraphedStep, graph_from
from disentangle.training.guard import call_plugin
from disentangle.training.lock import run_lock
from disentangle.training.stop import StopRequest, Stopped, stop_on_signals
from disentangle.training.rundir import (ENVIRONMENT_FILE, StepLog, TensorBoardLog, cpu_repeat_changes,
                                         environment, require_tensorboard, truncate_metrics)
from disentangle.training.loss import TotalLoss, takes_step
from disentangle.training.state import (CHECKPOINT, load_checkpoint, load_state, rng_state, save_checkpoint,
                                        seed_everything, set_rng_state)


@attrs.define
class TrainResult:
    run_dir: Path
    step: int
    total_steps: int
    seconds: float
    last_losses: dict[str, float]
    eval: dict[str, Any]
    steps_this_run: int = 0


class Trainer:
    """One process's part of a run: build, (resume,) train, checkpoint, evaluate."""

    def __init__(self, recipe: Recipe, run_dir: Path, *, resume: bool, device: torch.device,
                 world: distributed.World, registry: Registry, cache_dir: Path | None, console: Console,
                 on_step: Callable[[int, dict[str, float]], None] | None = None):
        self.recipe, self.run_dir, self.resume, self.device, self.world = recipe, run_dir, resume, device, world
        self.registry, self.cache_dir, self.console, self.on_step = registry, cache_dir, console, on_step
        self.ckpt_path = run_dir / CHECKPOINT
        self.metrics_path = run_dir / "metrics.jsonl"
        self.step = 0
        self.start_step = 0
        self.has_checkpoint = False
        self.stop = StopRequest()  # train() connects it to SIGINT/SIGTERM

    # ----- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        recipe, cfg, world, run_dir = self.recipe, self.recipe.train, self.world, self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise DisentangleError(f"run directory {run_dir} is a file", hint="pass another --run-dir")
        if not self.resume and self.ckpt_path.exists():
            raise DisentangleError(f"{run_dir} already holds a run", hint=f"continue it with --resume {run_dir}, "
                                   "or pass another --run-dir")
        distributed.check_batch_size(cfg.batch_size, world)
        if cfg.tensorboard:  # a missing extra stops the run before anything is built
            require_tensorboard()
        if world.is_main:  # a read-only cache is named before anything is built; killed writers' leftovers go
            prepare_cache_dir(self.cache_dir, self.console.print)
        seed_everything(cfg.seed)  # the same initial weights in every process
        with distributed.main_first(world):  # rank 0 builds dataset caches, the others read them
            self.pipe = pipe = build_pipeline(recipe, self.device, self.registry, self.cache_dir, world)
        self.split = pipe.data.split("train")
        self.steps_per_epoch = len(self.split) // cfg.batch_size
        self.total = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total = min(self.total, cfg.max_steps)
        with distributed.main_first(world):  # pseudo-label caches likewise
            for name, obj in pipe.objectives.items():
                self.console.print(f"preparing {name} …")
                call_plugin(f"preparing '{name}'", obj.prepare, pipe.data, pipe.ctx)
        self.params = [p for p in list(pipe.model.parameters()) + list(pipe.objectives.parameters())
                       if p.requires_grad]
        self.fused = self.device.type == "cuda"
        self.capturable = cfg.cuda_graph == "on"
        if self.capturable:
            self._check_graphable()
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                          fused=self.fused or None, capturable=self.capturable)
        if self.resume:
            self._load()
        else:
            if world.active:  # per-process noise (reparameterisation, shuffles) must differ
                torch.manual_seed(cfg.seed * 1_000_003 + world.rank)
            if world.is_main:
                run_dir.mkdir(parents=True, exist_ok=True)
                self.metrics_path.unlink(missing_ok=True)
        self.start_step = self.step
        # after loading: compiled/autocast forwards do not change parameters or state-dict keys
        self.fast = precision.configure(pipe.model, self.device, cfg.precision, cfg.compile, cfg.channels_last,
                                       cfg.deterministic)
        self.batches = choose_batches(self.split, self.device, cfg.data_on_device, cfg.num_workers)
        self.engine = distributed.wrap(TotalLoss(pipe.model, pipe.objectives, recipe), self.device, world)
        self.graph_from = graph_from(recipe, list(pipe.objectives))
        self.graphed = GraphedStep(self._step, [pipe.model, pipe.objectives], self.optimizer, self.device) \
            if self.capturable else None
        if world.is_main:
            ran = attrs.evolve(recipe, train=attrs.evolve(cfg, device=self.device.type))  # record what ran
            save_recipe(ran, run_dir / "recipe.toml")
            self.recipe_toml = (run_dir / "recipe.toml").read_text()  # saved with every checkpoint
            env = {**environment(self.device, cfg.seed, [p.to_dict() for p in self.registry.plugins]),
                   "world_size": world.size, **self.fast, "batches": self.batches.kind, "fused_adam": self.fused,
                   "cuda_graph_from_step": self.graph_from if self.graphed is not None else None}
            if self.resume:
                self._note_cpu_changes(env)
            atomic_write_text(json.dumps(env, indent=2, default=str), run_dir / ENVIRONMENT_FILE)

    def _load(self) -> None:
        pipe, path = self.pipe, self.ckpt_path
        ckpt = load_checkpoint(path, self.device)
        load_state(pipe.model, ckpt["model"], "model", path)
        load_state(pipe.objectives, ckpt["objectives"], "task/regularizer state", path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except ValueError as exc:
            raise DisentangleError(f"{path}: the optimizer state does not fit the recipe: {exc}") from None
        for group in self.optimizer.param_groups:  # the device and recipe decide, not the checkpoint's writer
            group["fused"] = self.fused or None
            group["capturable"] = self.capturable
        self.step = int(ckpt["step"])
        self.has_checkpoint = True
        ranks = ckpt.get("rng_ranks") or []
        if len(ranks) == self.world.size:  # each process continues its own random stream
            set_rng_state(ranks[self.world.rank])
        else:
            set_rng_state(ckpt["rng"])
            if self.world.active:  # written by another number of processes: the others draw anew
                torch.manual_seed(self.recipe.train.seed * 1_000_003 + self.step * 1009 + self.world.rank)
        if self.world.is_main:
            truncate_metrics(self.metrics_path, self.step)
        self.console.print(f"resuming {self.run_dir} at step {self.step}/{self.total}")

    def _note_cpu_changes(self, env: dict[str, Any]) -> None:
        """On the CPU a resumed run repeats the uninterrupted one bit for bit only with the thread count and
        kernels it started with: say so when they changed (a note, not an error: the run is still sound)."""
        path = self.run_dir / ENVIRONMENT_FILE
        if self.device.type != "cpu" or not path.exists():
            return
        try:
            before = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return
        changes = cpu_repeat_changes(before, env)
        if changes:
            threads = before.get("torch_threads")
            hint = (f" (OMP_NUM_THREADS={threads} restores the thread count)"
                    if threads not in (None, env["torch_threads"]) else "")
            self.console.print(f"note: {path} records other CPU settings than this process has: "
                               f"{', '.join(changes)}; the resumed steps may not repeat an uninterrupted run "
                               f"bit for bit{hint}")

    def _check_graphable(self) -> None:
        """``train.cuda_graph = "on"`` where the step cannot be captured is an error, not a slow run."""
        stepped = [n for n, obj in self.pipe.objectives.items() if takes_step(obj.loss)]
        why = None
        if stepped:
            why = (f"the loss of {', '.join(repr(n) for n in stepped)} takes the step number, which a captured "
                   "graph would freeze")
        elif self.world.active:
            why = "it is not supported under torchrun yet"
        elif self.device.type != "cuda":
            why = f"it needs a CUDA device, and this run is on {self.device.type}"
        if why:
            raise DisentangleError(f"train.cuda_graph = \"on\": {why}", hint="set train.cuda_graph = \"off\"")

    # ----- one step ------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """One optimizer step on ``batch``; returns the loss terms and the gradient norm as device
        tensors (nothing is read by the host here). With ``train.cuda_graph = "on"`` the step is a
        replay of a captured CUDA graph once the loss weights have stopped warming up, and the
        tensors it returns are overwritten by the next step."""
        if self.graphed is not None and self.step >= self.graph_from:
            terms = self.graphed(batch)
        else:
            terms = self._step(batch)
        self.step += 1
        return terms

    def _step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.recipe.train
        loss, terms = self.engine(batch, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under torchrun, DistributedDataParallel averages the gradients during backward
        if cfg.grad_clip is None and hasattr(nn.utils, "get_total_norm"):  # measure only: no rescaling pass
            terms["grad_norm"] = nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        else:
            terms["grad_norm"] = nn.utils.clip_grad_norm_(
                self.params, cfg.grad_clip if cfg.grad_clip is not None else math.inf)
        call_plugin(f"step {self.step + 1}: the optimizer update (train.lr = {cfg.lr:g})", self.optimizer.step)
        return terms

    # ----- checks and checkpoints -----------------------------------------------------------------
    def _resume_hint(self, what: str) -> str:
        if self.has_checkpoint:
            return f"{what}; then `disentangle run --resume {self.run_dir}`"
        return (f"{what}; no checkpoint was written yet, so start again: `disentangle run "
                f"{self.recipe.source} --run-dir <new dir>`")

    def _kept(self) -> str:
        return f"the last good checkpoint ({self.ckpt_path}) was kept" if self.has_checkpoint else \
            "no checkpoint was written"

    def _check(self, log: StepLog) -> None:
        """Write pending log lines; stop (in every process) if any step was non-finite."""
        bad_step, bad = log.flush()
        if not distributed.any_true(bad_step is not None, self.world, self.device):
            return
        kept = self._kept()
        if bad_step is None:
            raise TrainingError(f"a non-finite loss in another process by step {self.step}; training stopped "
                                f"and {kept}", hint=self._resume_hint("lower train.lr or set train.grad_clip"))
        if bad == ["grad_norm"]:
            raise TrainingError(f"non-finite gradients at step {bad_step}; training stopped and {kept}",
                                hint=self._resume_hint("lower train.lr or set train.grad_clip"))
        bad = [b for b in bad if b != "grad_norm"]
        raise TrainingError(f"non-finite loss at step {bad_step} ({', '.join(bad)}); training stopped and {kept}",
                            hint=self._resume_hint("lower train.lr, set train.grad_clip, or check the data for NaNs"))

    def save_checkpoint(self) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        if distributed.any_true(not bool(finite), self.world, self.device):
            kept = self._kept()
            raise TrainingError(f"the weights became non-finite by step {self.step}; {kept}",
                                hint=self._resume_hint("lower train.lr or set train.grad_clip"))
        ranks = distributed.gather_objects(rng_state(), self.world)  # every process's random state
        if self.world.is_main:
            save_checkpoint(self.ckpt_path, step=self.step, total_steps=self.total, model=self.pipe.model,
                            objectives=self.pipe.objectives, optimizer=self.optimizer, rng_ranks=ranks,
                            recipe=getattr(self, "recipe_toml", None))
        self.has_checkpoint = True

    def _stop_requested(self) -> bool:
        if not self.world.active:
            return self.stop.requested
        # every process must stop at the same step: agree at log points
        return self.step % self.recipe.train.log_every == 0 and \
            distributed.any_true(self.stop.requested, self.world, self.device)

    def _stop(self, log: StepLog) -> None:
        self._check(log)  # writes pending log lines; a checkpoint only follows steps checked finite
        self.save_checkpoint()
        raise Stopped(f"stopped by {self.stop.name} at step {self.step}/{self.total}; checkpoint written",
                      hint=f"continue with `disentangle run --resume {self.run_dir}`", signum=self.stop.signum)

    # ----- the loop ------------------------------------------------------------------------------
    def train(self) -> TrainResult:
        board = (TensorBoardLog(self.run_dir, self.step, fresh=not self.resume)
                 if self.recipe.train.tensorboard and self.world.is_main else None)
        with contextlib.closing(board) if board is not None else contextlib.nullcontext():
            return self._train(board)

    def _train(self, board: TensorBoardLog | None) -> TrainResult:
        cfg, world, pipe = self.recipe.train, self.world, self.pipe
        pipe.model.train()
        pipe.objectives.train()
        start = time.perf_counter()
        fh = open(self.metrics_path, "a") if world.is_main else None
        log = StepLog(fh, self.on_step, board)
        with progress_bar(disable=not world.is_main) as prog, (fh or contextlib.nullcontext()):
            task = prog.add_task("training", total=self.total, completed=self.step, info="")
            self.stop.armed = True
            while self.step < self.total:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                order = epoch_batches(len(self.split), cfg.batch_size, cfg.seed, epoch)[offset:]
                if world.active:
                    order = order[:, world.rank:: world.size]
                for batch in self.batches(order, seed=cfg.seed + epoch):
                    log.record(self.step + 1, epoch, self.train_step(batch))
                    at_checkpoint = self.step % cfg.checkpoint_every == 0 or self.step == self.total
                    if self.step % cfg.log_every == 0 or at_checkpoint:
                        self._check(log)
                        info = "  ".join(f"{k} {v:.3g}" for k, v in log.last.items() if k not in ("vae", "grad_norm"))
                        prog.update(task, completed=self.step, info=info)
                    if at_checkpoint:
                        self.save_checkpoint()
                    if self._stop_requested():  # SIGINT/SIGTERM: flush and check the log, checkpoint, stop
                        self._stop(log)
                    if self.step >= self.total:
                        break
        self.stop.armed = False
        self._check(log)
        seconds = time.perf_counter() - start
        if world.is_main and (self.total == 0 or not self.ckpt_path.exists()):
            self.save_checkpoint()
        done = self.step - self.start_step
        self.console.print(f"trained {done} steps in {seconds:.1f} s ({done / max(seconds, 1e-9):.2f} steps/s) "
                           f"on {self.device}" + (f" x {world.size} processes" if world.active else "")
                           + (f"; now at step {self.step}/{self.total}" if self.start_step else ""))
        from disentangle.training.evaluate import evaluate

        results = evaluate(pipe, self.run_dir, console=self.console) if world.is_main else {}
        if board is not None:
            board.eval(self.step, results)
        distributed.barrier(world)
        return TrainResult(self.run_dir, self.step, self.total, seconds, log.last, results, done)


def train(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, device: str | None = None,
          registry: Registry | None = None, cache_dir: Path | None = None,
          console: Console | None = None, on_step: Callable[[int, dict[str, float]], None] | None = None
          ) -> TrainResult:
    """Train ``recipe`` in ``run_dir`` (continuing from its last checkpoint when ``resume``), then
    evaluate it. Under ``torchrun`` every process calls this; see :mod:`disentangle.distributed`."""
    world, dev = distributed.init_world(resolve_device(device or recipe.train.device))
    try:
        console = console or Console(stderr=True, quiet=not world.is_main)
        # one writer per run directory: rank 0 holds its lock for the whole run (see training/lock.py)
        with stop_on_signals() as stop, \
                run_lock(Path(run_dir), say=console.print) if world.is_main else contextlib.nullcontext():
            trainer = Trainer(recipe, Path(run_dir), resume=resume, device=dev, world=world,
                              registry=registry or get_registry(), cache_dir=cache_dir,
                              console=console, on_step=on_step)
            trainer.stop = stop
            trainer.setup()
            return trainer.train()
    finally:
        distributed.shutdown(world)
