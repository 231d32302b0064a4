"""A training step stays on the device: the model and the built-in objectives neither copy tensors
from the host nor read values back, so a GPU step never waits for the GPU (docs/performance.md).

The step runs on PyTorch's ``meta`` device (shapes without values): a tensor made on the host and
used in the step shows up as an operation mixing ``cpu`` and ``meta`` tensors, and a value read
back (``.item()``, ``int(t)``, ``bool(t)``) cannot run at all.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import disentangle
from conftest import tiny_quickstart
from disentangle import testing
from disentangle.training import build_pipeline
from disentangle.training.loss import TotalLoss

META = torch.device("meta")


@pytest.mark.parametrize("encoder_norm", ["none", "batch"])
def test_a_training_step_copies_nothing_from_the_host(module_cache, encoder_norm):
    recipe = tiny_quickstart(f"model.encoder.norm=\"{encoder_norm}\"", f"model.decoder.norm=\"{encoder_norm}\"",
                             # every built-in objective a moving-shapes recipe can hold
                             "tasks=[{use = \"flow-grid\", weight = 1.0, grid = 2, top_k = 1}, "
                             "{use = \"label-supervised\", weight = 1.0}]")
    pipe = build_pipeline(recipe, "cpu", cache_dir=module_cache)
    for obj in pipe.objectives.values():
        obj.prepare(pipe.data, pipe.ctx)
    assert {"flow-grid", "label-supervised", "triplet-scc", "mi-mws"} <= set(pipe.objectives)
    engine = TotalLoss(pipe.model, pipe.objectives, recipe).to(META).train()
    batch = testing.meta_batch(pipe.data, recipe.train.batch_size)
    engine(batch, 0)  # the first step may move state the objectives keep (pseudo-labels) once
    probe = testing.host_tensor_ops()
    with probe:
        loss, terms = engine(batch, 1)
        loss.backward()
        nn.utils.clip_grad_norm_([p for p in engine.parameters() if p.grad is not None], float("inf"))
    assert loss.device == META and all(v.device == META for v in terms.values())
    assert probe.found == []


def test_the_probe_sees_a_host_tensor():
    probe = testing.host_tensor_ops()
    with probe:
        x = torch.empty(4, 3, device=META)
        _ = x[torch.tensor([0, 2])]  # an index made on the host: a copy (and a wait) on a GPU
        _ = x + 1.0  # a Python number is fine
    assert len(probe.found) == 1, probe.found


class HostIndex(disentangle.Regularizer):
    """Picks its negatives with an index made on the host, the way the GPU must not see."""

    def loss(self, batch, out, model):
        return (out.f - out.f[torch.randperm(len(out.f))]).pow(2).mean()


class ReadsBack(disentangle.Regularizer):
    def loss(self, batch, out, model):
        return out.f.pow(2).mean() * (1.0 if float(out.f.detach().abs().max()) > 0 else 0.0)


@pytest.mark.parametrize("bad", [HostIndex, ReadsBack])
def test_check_stays_on_device_catches_host_work(tmp_path, bad):
    with pytest.raises(AssertionError, match="host|reads a value back"):
        testing.check_stays_on_device(bad(), testing.tiny_context(tmp_path))


@pytest.mark.parametrize("name, config", [
    ("flow-grid", {"grid": 2, "top_k": 1}), ("triplet-scc", {}), ("triplet-scc", {"positive": "other-half"}),
    ("mi-mws", {})])
def test_built_in_objectives_stay_on_device(tmp_path, name, config):
    registry = disentangle.get_registry()
    kind = "task" if name == "flow-grid" else "regularizer"  # label-supervised: in the whole step above
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16))
    objective = registry.get(kind, name).build(registry.get(kind, name).config(**config), ctx)
    testing.check_stays_on_device(objective, ctx)
