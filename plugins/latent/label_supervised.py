"""``label-supervised``: the ``baseline-sv`` task, z_f and z_1:T supervised with ground-truth labels.

Each static factor of the dataset gets a head on z_f, each dynamic factor a head on z_1:T
(flattened over time); the loss is the sum of their cross-entropies against ``batch["labels"]``.
This is the paper's supervised upper reference, not self-supervision: it reads the very labels the
judge metrics score, so compare it with the self-supervised model, never report it as one.
"""

from __future__ import annotations

import attrs
import torch
from torch import nn

import disentangle


@attrs.frozen
class LabelSupervisedConfig:
    """Recipe parameters of ``label-supervised``."""

    hidden: int = attrs.field(default=64, validator=disentangle.validators.positive_int)
    """Width of the hidden layer of every head."""


def _head(inp: int, hidden: int, classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class LabelSupervised(disentangle.Task):
    Config = LabelSupervisedConfig

    def __init__(self, config: LabelSupervisedConfig, ctx: disentangle.BuildContext):
        super().__init__()
        spec, sizes = ctx.data, ctx.model
        if not (spec.static_factors or spec.dynamic_factors):
            raise disentangle.DisentangleError("label-supervised: this dataset has no labelled factors",
                                               hint="use it with a dataset whose items carry labels (moving-shapes, sprites)")
        self.static = nn.ModuleDict({k: _head(sizes.z_f_dim, config.hidden, n) for k, n in spec.static_factors.items()})
        self.dynamic = nn.ModuleDict({k: _head(sizes.z_t_dim * spec.seq_len, config.hidden, n)
                                      for k, n in spec.dynamic_factors.items()})

    def loss(self, batch, out, model) -> torch.Tensor:
        labels = batch["labels"]
        terms = [nn.functional.cross_entropy(head(out.f), labels[k]) for k, head in self.static.items()]
        z = out.z.flatten(1)
        terms += [nn.functional.cross_entropy(head(z), labels[k]) for k, head in self.dynamic.items()]
        return torch.stack(terms).sum()


@disentangle.hookimpl
def register_tasks(register):
    register("label-supervised", LabelSupervised)
