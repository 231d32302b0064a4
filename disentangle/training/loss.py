"""The whole training loss of one batch, as one module: the ELBO terms, each objective's loss and
their weights at this step.

Computing everything in one ``forward`` is what lets ``DistributedDataParallel`` wrap it: its
bucketed gradient all-reduce then overlaps the backward pass, also for objectives that call into
the model outside ``S3VAE.forward`` (``triplet-scc`` re-runs ``static_posterior``).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from disentangle.errors import DisentangleError
from disentangle.model import S3VAE
from disentangle.recipe import Recipe
from disentangle.training.guard import call_plugin
from disentangle.training.schedule import loss_weights


def takes_step(fn: Callable[..., Any]) -> bool:
    """Whether an objective's ``loss`` declares the optional ``step`` argument (or ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "step" or p.kind is p.VAR_KEYWORD for p in params)


class TotalLoss(nn.Module):
    """``forward(batch, step) -> (loss, terms)``: the weighted total and every unweighted term."""

    def __init__(self, model: S3VAE, objectives: nn.ModuleDict, recipe: Recipe):
        super().__init__()
        self.model, self.objectives, self.recipe = model, objectives, recipe
        self.names = list(objectives)
        self.with_step = {name: takes_step(obj.loss) for name, obj in objectives.items()}

    def forward(self, batch: dict[str, Any], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        recipe = self.recipe
        out = call_plugin(f"step {step + 1}: the model (encoder '{recipe.encoder.use}', decoder "
                          f"'{recipe.decoder.use}')", self.model, batch["x"])
        weights = loss_weights(recipe, self.names, step)
        terms = {"loss": out.vae_loss, "vae": out.vae_loss, "recon": out.recon_nll.mean(),
                 "kl_f": out.kl_f.mean(), "kl_z": out.kl_z.mean()}
        if weights["kl_f"] == weights["kl_z"] == 1.0:
            loss = out.vae_loss  # the ELBO as is
        else:
            loss = terms["recon"] + weights["kl_f"] * terms["kl_f"] + weights["kl_z"] * terms["kl_z"]
        for name, obj in self.objectives.items():
            kwargs = {"step": step} if self.with_step[name] else {}
            value = call_plugin(f"step {step + 1}: the loss of '{name}'", obj.loss, batch, out, self.model, **kwargs)
            if not isinstance(value, torch.Tensor) or value.ndim != 0:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise DisentangleError(f"step {step + 1}: the loss of '{name}' is {shape}, not a scalar tensor",
                                       hint="an objective's loss() returns one number for the batch "
                                            "(e.g. .mean() over batch and time)")
            terms[name] = value
            loss = loss + weights[name] * value
        terms["loss"] = loss
        return loss, terms
