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
import torch
from attrs import validators as v

import disentangle


#: The last encoding of a test split, shared by the metrics of one evaluation (one entry only).
_LAST: dict[tuple, tuple] = {}


def _weights_key(model: torch.nn.Module) -> float:
    """Changes whenever the weights do (a sum over every parameter; cheap next to encoding)."""
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def _encode_split(model: disentangle.S3VAE, data: disentangle.SequenceData, device: torch.device,
                  limit: int, batch_size: int = 256):
    """Posterior means of the first ``limit`` test sequences, their labels and the reconstruction
    MSE. Both metrics of this plug-in call it, so the result of the last call is reused while the
    model, its weights, the data and the limit are the same."""
    key = (id(model), _weights_key(model), id(data), limit, str(device))
    if key in _LAST:
        return _LAST[key]
    _LAST.clear()
    _LAST[key] = result = _encode(model, data, device, limit, batch_size)
    return result


@torch.no_grad()
def _encode(model, data, device, limit, batch_size):
    split = data.split("test")
    n = min(limit, len(split))
    fs, zs, labels, sq_err, count = [], [], {}, 0.0, 0
    for start in range(0, n, batch_size):
        items = [split[i] for i in range(start, min(start + batch_size, n))]
        x = torch.stack([it["x"] for it in items]).to(device)
        f, z = model.encode(x)
        fs.append(f.cpu().numpy())
        zs.append(z.flatten(1).cpu().numpy())
        for it in items:
            for k, val in it.get("labels", {}).items():
                labels.setdefault(k, []).append(int(val))
        recon = model.decoder.mean(model.decode(f, z))
        sq_err += float(((recon - x) ** 2).sum())
        count += x.numel()
    return np.concatenate(fs), np.concatenate(zs), {k: np.array(val) for k, val in labels.items()}, sq_err / max(count, 1)


@attrs.frozen
class LatentProbeConfig:
    max_sequences: int = attrs.field(default=2000, validator=v.ge(8))
    """How many test sequences to encode (half train the probes, half score them)."""
    seed: int = 0


class LatentProbe(disentangle.Metric):
    Config = LatentProbeConfig

    def __init__(self, config: LatentProbeConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, model, data, device):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        f, z, labels, _ = _encode_split(model, data, device, self.config.max_sequences)
        order = np.random.default_rng(self.config.seed).permutation(len(f))
        fit, score = order[: len(f) // 2], order[len(f) // 2:]
        results: dict[str, float] = {}
        groups = {"static": data.spec.static_factors, "dynamic": data.spec.dynamic_factors}
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


class Reconstruction(disentangle.Metric):
    Config = ReconstructionConfig

    def __init__(self, config: ReconstructionConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, model, data, device):
        *_, mse = _encode_split(model, data, device, self.config.max_sequences)
        return {"mse": mse}


@disentangle.hookimpl
def register_metrics(register):
    register("latent-probe", LatentProbe)
    register("reconstruction", Reconstruction)
