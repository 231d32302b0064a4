"""The whole training step as one CUDA graph (``train.cuda_graph = "on"``).

A training step of the paper-size model launches some 700 small kernels; on a GPU the host spends
longer queueing them than the GPU spends running them (docs/performance.md). Captured once in a
CUDA graph, the step (forward, backward, gradient norm and optimizer update) is replayed with one
launch. The step can be captured because it has fixed shapes and never waits for the device (no
value read back, nothing copied from the host; ``tests/test_step_on_device.py``).

:class:`GraphedStep` keeps the semantics of the eager step:

- the batch is copied into static input tensors before each replay, and the step's loss terms are
  static output tensors, overwritten by the next replay (the step log copies them at once);
- capturing needs a few warm-up steps (on a side stream). They would train the model, so the
  weights, the buffers (batch-norm statistics), the optimizer state and every random generator are
  saved before and restored, in place, after the capture: the first replay starts from the very
  state the eager step would have started from;
- random draws (reparameterisation, shuffles) stay random from replay to replay: PyTorch advances
  the generator's offset at each replay.

What the graph freezes is the Python side of the step: the loss weights (so the trainer switches
to the graph only once every warm-up is over) and any objective's own use of ``step`` (refused).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.training.state import rng_state, set_rng_state

Terms = dict[str, torch.Tensor]
#: ``capture(fn) -> (graph, outputs)``: records ``fn()``; ``graph.replay()`` reruns it in place.
Capture = Callable[[Callable[[], Terms]], tuple[Any, Terms]]


def cuda_capture(fn: Callable[[], Terms]) -> tuple[Any, Terms]:
    """A :data:`Capture` that records ``fn()`` in a CUDA graph (on the current device)."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def _static_copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _static_copy(v) for k, v in value.items()}
    raise DisentangleError(f"train.cuda_graph = \"on\": the batch holds a {type(value).__name__}; only tensors "
                           "(and dicts of them) can be copied into a CUDA graph's inputs",
                           hint="set train.cuda_graph = \"off\" for this dataset")


def _copy_into(static: Any, value: Any) -> None:
    if isinstance(static, torch.Tensor):
        static.copy_(value, non_blocking=True)
    else:
        if static.keys() != value.keys():
            raise DisentangleError(f"train.cuda_graph = \"on\": the batch's keys changed from {sorted(static)} "
                                   f"to {sorted(value)}", hint="set train.cuda_graph = \"off\" for this dataset")
        for k in static:
            _copy_into(static[k], value[k])


class _Saved:
    """Weights, buffers, optimizer state and random generators, restored in place."""

    def __init__(self, modules: Iterable[nn.Module], optimizer: torch.optim.Optimizer):
        self.modules, self.optimizer = list(modules), optimizer
        self.tensors = [[v.clone() for v in m.state_dict().values()] for m in self.modules]
        self.optim = {id(p): {k: v.clone() for k, v in s.items() if isinstance(v, torch.Tensor)}
                      for p, s in optimizer.state.items()}
        self.rng = rng_state()

    @torch.no_grad()
    def restore(self) -> None:
        for m, saved in zip(self.modules, self.tensors):
            for v, s in zip(m.state_dict().values(), saved):
                v.copy_(s)
        for p, state in self.optimizer.state.items():  # made by the warm-up: zero, as a fresh optimizer's
            before = self.optim.get(id(p), {})
            for k, v in state.items():
                if not isinstance(v, torch.Tensor):
                    continue
                if k in before:
                    v.copy_(before[k])
                else:
                    v.zero_()
        set_rng_state(self.rng)


class GraphedStep:
    """``step(batch) -> terms`` (forward, backward, optimizer update) replayed from one capture.

    ``modules`` hold every parameter and buffer the step changes; ``optimizer`` must be capturable
    (``capturable=True``) on a GPU. ``capture`` records the step (default: a CUDA graph on
    ``device``); tests pass one that reruns the step eagerly."""

    def __init__(self, step: Callable[[dict[str, Any]], Terms], modules: Iterable[nn.Module],
                 optimizer: torch.optim.Optimizer, device: torch.device, *, warmup: int = 3,
                 capture: Capture | None = None):
        self.step, self.modules, self.optimizer, self.device = step, list(modules), optimizer, device
        self.warmup = warmup
        self.capture = capture or cuda_capture
        self.graph: Any = None
        self.batch: dict[str, Any] = {}
        self.terms: Terms = {}

    def _warm_up(self) -> None:
        if self.device.type != "cuda":
            for _ in range(self.warmup):
                self.step(self.batch)
            return
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.step(self.batch)
        torch.cuda.current_stream(self.device).wait_stream(side)

    def _record(self, batch: dict[str, Any]) -> None:
        self.batch = _static_copy(batch)
        saved = _Saved(self.modules, self.optimizer)
        self._warm_up()
        self.optimizer.zero_grad(set_to_none=True)  # the captured backward makes the gradients anew
        self.graph, self.terms = self.capture(lambda: self.step(self.batch))
        saved.restore()

    def __call__(self, batch: dict[str, Any]) -> Terms:
        if self.graph is None:
            self._record(batch)
        _copy_into(self.batch, batch)
        self.graph.replay()
        return self.terms


def graph_from(recipe: Any, names: list[str]) -> int:
    """The first step from which every loss weight keeps its final value (``linear_warmup`` reaches
    it at ``step = steps - 1``): the trainer captures the graph there."""
    warmups = [recipe.model.kl_warmup] + [spec.weight_warmup for spec in recipe.objectives]
    return max([w - 1 for w in warmups if w > 0], default=0)
