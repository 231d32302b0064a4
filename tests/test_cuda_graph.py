"""``train.cuda_graph``: the step replayed from one capture trains exactly like the eager step.

CI has no GPU, so the capture is replaced by one that reruns the step eagerly and copies its
outputs into the captured ones; what is tested is everything around it: the static batch, the
warm-up whose training is undone (weights, batch-norm statistics, optimizer state, random
generators), the switch after the loss weights' warm-up, and the refusals. The CUDA capture itself
is checked by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

import disentangle
from conftest import tiny_quickstart
from disentangle.training import CHECKPOINT, Trainer, train
from disentangle.training.graph import GraphedStep, graph_from

class EagerReplay:
    """Stands in for a CUDA graph: ``replay`` reruns the step and writes into the captured outputs."""

    def __init__(self, fn):
        self.fn = fn

    def replay(self):
        for k, v in self.fn().items():
            self.outputs[k].copy_(v)


def eager_capture(fn):
    graph = EagerReplay(fn)
    graph.outputs = {k: v.clone() for k, v in fn().items()}  # a real capture runs nothing: the restore undoes this
    return graph, graph.outputs


def run(tmp_path, cache, name, rec, *, graphed=None):
    """Train ``rec``; ``graphed``: a :class:`GraphedStep` class to take the steps (its capture eager)."""
    trainer = Trainer(rec, tmp_path / name, resume=False, device=torch.device("cpu"), world=disentangle.World(),
                      registry=disentangle.get_registry(), cache_dir=cache,
                      console=Console(stderr=True, quiet=True))
    trainer.setup()
    if graphed is not None:
        trainer.graphed = graphed(trainer._step, [trainer.pipe.model, trainer.pipe.objectives],
                                  trainer.optimizer, trainer.device, capture=eager_capture)
    result = trainer.train()
    return result, torch.load(tmp_path / name / CHECKPOINT, weights_only=True)


@pytest.mark.parametrize("warmup", [0, 3])
def test_graphed_steps_train_exactly_like_eager_steps(tmp_path, module_cache, warmup):
    rec = tiny_quickstart(f"model.kl_warmup={warmup}")
    eager, a = run(tmp_path, module_cache, "eager", rec)
    graphed, b = run(tmp_path, module_cache, "graphed", rec, graphed=GraphedStep)
    assert graphed.last_losses == eager.last_losses
    for part in ("model", "objectives"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


def test_the_warm_up_would_change_the_run_if_it_were_not_undone(tmp_path, module_cache):
    rec = tiny_quickstart()
    eager, _ = run(tmp_path, module_cache, "eager", rec)

    class Leaky(GraphedStep):
        def _record(self, batch):  # capture without restoring what the warm-up trained
            self.batch = {k: v for k, v in batch.items()}
            self._warm_up()
            self.graph, self.terms = self.capture(lambda: self.step(self.batch))

    leaky, _ = run(tmp_path, module_cache, "leaky", rec, graphed=Leaky)
    assert leaky.last_losses != eager.last_losses


def test_graph_starts_after_every_warm_up():
    assert graph_from(tiny_quickstart(), []) == 0
    assert graph_from(tiny_quickstart("model.kl_warmup=100"), []) == 99
    rec = tiny_quickstart("model.kl_warmup=10", "regularizers=[{use = \"mi-mws\", weight = 1.0, weight_warmup = 50}]")
    assert graph_from(rec, ["mi-mws"]) == 49


def test_cuda_graph_on_cpu_is_a_clear_error(tmp_path, module_cache):
    with pytest.raises(disentangle.DisentangleError, match="cuda_graph.*CUDA device"):
        train(tiny_quickstart("train.cuda_graph=\"on\""), tmp_path / "run", cache_dir=module_cache)
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_cuda_graph_with_an_objective_that_takes_the_step_is_a_clear_error(tmp_path):
    import tomllib

    from disentangle.recipe import apply_overrides, parse_recipe
    from toy_plugins import TOY_RECIPE, toy_registry

    reg = toy_registry()
    rec = parse_recipe(apply_overrides(tomllib.loads(TOY_RECIPE), ["train.cuda_graph=\"on\""]), registry=reg)
    with pytest.raises(disentangle.DisentangleError, match="'z-norm' takes the step number"):
        train(rec, tmp_path / "run", registry=reg)
