"""Loss weights over training: a linear warm-up from 0 to the recipe's value."""

from __future__ import annotations

from disentangle.recipe import Recipe


def linear_warmup(value: float, steps: int, step: int) -> float:
    """``value`` scaled by ``min(1, (step + 1) / steps)`` (``step`` = steps taken before this one);
    ``steps = 0`` means no warm-up."""
    if steps <= 0:
        return value
    return value * min(1.0, (step + 1) / steps)


def loss_weights(recipe: Recipe, names: list[str], step: int) -> dict[str, float]:
    """The weight of every loss term at ``step``: ``kl_f``, ``kl_z`` (model.beta_f / beta_z with
    model.kl_warmup) and each task/regularizer (its weight with its weight_warmup), by column name."""
    m = recipe.model
    weights = {"kl_f": linear_warmup(m.beta_f, m.kl_warmup, step), "kl_z": linear_warmup(m.beta_z, m.kl_warmup, step)}
    for name, spec in zip(names, recipe.objectives):
        weights[name] = linear_warmup(spec.weight, spec.weight_warmup, step)
    return weights
