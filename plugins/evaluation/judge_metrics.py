"""``judge``: the paper's protocol (Section 5) scored by a judge classifier (see :mod:`.judge`).

For each test sequence, keep one factor (z_f: ``keep="static"``; z_1:T: ``keep="dynamic"``) and
draw the other from its prior; the judge classifies every generated sequence. For each factor of
the kept kind (static factors when z_f is kept, dynamic ones when z_1:T is kept):

- ``Acc``: the judge's accuracy against the source sequence's label (the factor survived);
- ``IS`` = exp(E_x KL(p(y|x) || p(y))), ``H(y|x)`` = E_x H(p(y|x)), ``H(y)`` = H(E_x p(y|x)):
  confident (low H(y|x)) and diverse (high H(y)) generations give a high IS.

Each is computed over ``rounds`` sampling rounds with fixed seeds and reported as
``<keep>/<factor>/<score>/mean`` and ``/std``; ``<keep>/<factor>/ceiling`` is the judge's own
accuracy on the real test split (from the judge file), ``<keep>/acc/mean`` averages Acc over the
kept factors.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import torch
from attrs import validators as v

import disentangle
from disentangle_plugins.evaluation import judge as judges


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of a probability table."""
    p = np.asarray(p, dtype=np.float64)
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)


def scores(probs: np.ndarray) -> dict[str, float]:
    """IS, H(y|x) and H(y) of a table ``(N, classes)`` of p(y|x) (nats; IS = exp(H(y) - H(y|x)))."""
    probs = np.asarray(probs, dtype=np.float64)
    marginal = probs.mean(0)
    kl = (probs * (np.log(np.clip(probs, 1e-12, None)) - np.log(np.clip(marginal, 1e-12, None)))).sum(-1)
    return {"IS": float(np.exp(kl.mean())), "H(y|x)": float(entropy(probs).mean()), "H(y)": float(entropy(marginal))}


@attrs.frozen
class JudgeMetricConfig:
    """Recipe parameters of the ``judge`` metric."""

    path: str = "judge.pt"
    """The judge file (`disentangle judge train RECIPE --out PATH`), relative to the working directory."""
    keep: tuple[str, ...] = attrs.field(default=("static", "dynamic"), converter=tuple,
                                        validator=v.deep_iterable(disentangle.validators.one_of("static", "dynamic")))
    """Which factor is kept from the test sequence: static (z_f) and/or dynamic (z_1:T)."""
    rounds: int = attrs.field(default=3, validator=disentangle.validators.positive_int)
    """Sampling rounds (seeds seed, seed+1, ...); scores are reported as mean and std over them."""
    max_sequences: int = attrs.field(default=1000, validator=disentangle.validators.positive_int)
    """How many test sequences are used as sources (the first ones of the split)."""
    seed: int = 0
    """Seed of the first round's prior samples."""


def judge_real(judge: judges.Judge, batches) -> dict[str, np.ndarray]:
    """p(y|x) per factor for every sequence of ``batches`` plus the labels (``label:<factor>``)."""
    probs: dict[str, list] = {}
    for batch in batches:
        for k, p in judge.probabilities(batch["x"]).items():
            probs.setdefault(k, []).append(p.cpu().numpy())
            if k in batch["labels"]:
                probs.setdefault(f"label:{k}", []).append(batch["labels"][k].cpu().numpy())
    return {k: np.concatenate(val) for k, val in probs.items()}


class JudgeMetric(disentangle.Metric):
    Config = JudgeMetricConfig

    def __init__(self, config: JudgeMetricConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        cfg = self.config
        judge = judges.load_judge(Path(cfg.path), ev.data).to(ev.device)
        groups = {"static": list(ev.spec.static_factors), "dynamic": list(ev.spec.dynamic_factors)}
        results: dict[str, float] = {}
        for keep in cfg.keep:
            factors = [f for f in groups[keep] if f in judge.info["factors"]]
            if not factors:
                continue
            rounds: dict[str, list[float]] = {}
            for r in range(cfg.rounds):
                probs = judge_real(judge, ev.generate(keep, limit=cfg.max_sequences, seed=cfg.seed + r))
                accs = []
                for f in factors:
                    acc = float((probs[f].argmax(-1) == probs[f"label:{f}"]).mean())
                    accs.append(acc)
                    for name, value in {"Acc": acc, **scores(probs[f])}.items():
                        rounds.setdefault(f"{keep}/{f}/{name}", []).append(value)
                rounds.setdefault(f"{keep}/acc", []).append(float(np.mean(accs)))
            for key, values in rounds.items():
                results[f"{key}/mean"] = float(np.mean(values))
                results[f"{key}/std"] = float(np.std(values))
            for f in factors:
                results[f"{keep}/{f}/ceiling"] = float(judge.test_accuracy[f])
        return results


@disentangle.hookimpl
def register_metrics(register):
    register("judge", JudgeMetric)
