"""Metrics that need no judge classifier: linear probes on the latents, and reconstruction error.

``latent-probe``: for every ground-truth factor of the test split, a logistic-regression probe is
trained on half of the test sequences and scored on the other half, once from z_f and once from
z_1:T (posterior means, z_1:T flattened). A disentangled model predicts static factors from z_f
(high ``static/<factor>/z_f``) but not from z_1:T, and dynamic factors from z_1:T. Chance level
is reported beside each factor.

``reconstruction``: mean squared error per frame element of the reconstructions of the test split.
"""

from __future__ import annotations

import warnings

import attrs
import numpy as np
from attrs import validators as v

import disentangle


@attrs.frozen
class LatentProbeConfig:
    max_sequences: int = attrs.field(default=2000, validator=v.ge(8))
    """How many test sequences to encode (half train the probes, half score them)."""
    seed: int = 0
    """Seed of the random split of those sequences into probe-training and probe-scoring halves."""


class LatentProbe(disentangle.Metric):
    Config = LatentProbeConfig

    def __init__(self, config: LatentProbeConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        enc = ev.encoded("test", limit=self.config.max_sequences)
        f, z, labels = enc.f, enc.z.reshape(len(enc.z), -1), enc.labels
        order = np.random.default_rng(self.config.seed).permutation(len(f))
        fit, score = order[: len(f) // 2], order[len(f) // 2:]
        results: dict[str, float] = {}
        groups = {"static": ev.spec.static_factors, "dynamic": ev.spec.dynamic_factors}
        for group, factors in groups.items():
            for factor, n_classes in factors.items():
                if factor not in labels:
                    continue
                y = labels[factor]
                results[f"{group}/{factor}/chance"] = float(np.bincount(y[score]).max() / len(score))
                for name, feats in (("z_f", f), ("z_t", z)):
                    if len(np.unique(y[fit])) < 2:
                        continue
                    scaler = StandardScaler().fit(feats[fit])
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        clf = LogisticRegression(max_iter=300).fit(scaler.transform(feats[fit]), y[fit])
                    results[f"{group}/{factor}/{name}"] = float(clf.score(scaler.transform(feats[score]), y[score]))
        return results


@attrs.frozen
class ReconstructionConfig:
    max_sequences: int = attrs.field(default=2000, validator=v.gt(0))
    """How many test sequences to reconstruct (the first ones of the split)."""


class Reconstruction(disentangle.Metric):
    Config = ReconstructionConfig

    def __init__(self, config: ReconstructionConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        return {"mse": ev.encoded("test", limit=self.config.max_sequences).recon_mse}


@disentangle.hookimpl
def register_metrics(register):
    register("latent-probe", LatentProbe)
    register("reconstruction", Reconstruction)
