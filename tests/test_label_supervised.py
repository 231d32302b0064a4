"""``label-supervised`` (baseline-sv): heads on z_f / z_1:T trained from ground-truth labels."""

import attrs
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.latent import label_supervised as ls


def context(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 8, 8), seq_len=4)
    return attrs.evolve(ctx, data=attrs.evolve(ctx.data, static_factors={"identity": 2}, dynamic_factors={"motion": 2}))


def test_contract_and_labels_drive_the_loss(tmp_path):
    ctx = context(tmp_path)
    testing.check_registered(ls, "task", "label-supervised")
    task = ls.LabelSupervised(ls.LabelSupervisedConfig(hidden=8), ctx)
    data = testing.ToyData(ctx)
    items = [data.split("train")[i] for i in range(4)]
    batch = {"x": torch.stack([it["x"] for it in items]), "index": torch.arange(4),
             "labels": {k: torch.tensor([it["labels"][k] for it in items]) for k in ("identity", "motion")}}
    loss = testing.check_objective(task, ctx, data, batch=batch)
    flipped = {**batch, "labels": {k: 1 - v for k, v in batch["labels"].items()}}
    model = testing.tiny_model(ctx)
    out = model(batch["x"])
    assert not torch.isclose(task.loss(batch, out, model), task.loss(flipped, out, model))
    assert loss.item() > 0


def test_unlabelled_data_is_refused(tmp_path):
    ctx = testing.tiny_context(tmp_path)
    with pytest.raises(disentangle.DisentangleError, match="no labelled factors"):
        ls.LabelSupervised(ls.LabelSupervisedConfig(), ctx)
