"""``eer``: speaker verification equal error rate from z_f and from z_1:T, beside a mean-MFCC baseline.

An utterance is encoded as all its windows (items of the test split with the same ``meta["utterance"]``):
its z_f code is the mean of its windows' z_f, its z_1:T code the mean over time and windows of z_1:T.
Every pair of test utterances is a trial (target when both have the same ``meta["speaker"]``), scored
by the cosine of the two codes (after subtracting the mean code of the test utterances when
``center``; no labels are used for that). The EER is where the false-acceptance and false-rejection
rates meet on the ROC (``sklearn.metrics.roc_curve``, linear interpolation between its points).

Reported on the same trials:

- ``eer/z_f``, ``eer/z_t`` and ``eer/mfcc``: the mean-MFCC baseline (20 MFCCs per frame, averaged per
  utterance, standardised with the train split's statistics; from the data, not the model);
- ``.../content_differs``: only the trials whose ``meta["content"]`` differs (FSDD digits, TIMIT sentence
  ids). Same-content trials are easy for codes that carry the words, so a z_1:T that matches words
  could look speaker-informative (or a z_f speaker-free) on all trials;
- ``trials``, ``target_trials``, ``content_differs_trials``.

And the other way round, content verification: ``content-eer/z_f``, ``content-eer/z_t`` and
``content-eer/mfcc`` on the trials between different speakers (``content_trials``), target when both
say the same ``meta["content"]`` (``content_target_trials``). A z_1:T with no speaker in it scores a high
``eer/z_t`` also when it holds nothing at all; a low ``content-eer/z_t`` shows that it still holds the
words. Left out when no two speakers say the same thing.

A disentangled model has a low ``eer/z_f`` (below the MFCC baseline) and ``eer/z_t`` near 50%, and a
``content-eer/z_t`` below ``content-eer/z_f``.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs
import numpy as np

import disentangle


@attrs.frozen
class EERConfig:
    max_utterances: int = attrs.field(default=2000, validator=disentangle.validators.int_in_range(2))
    """Use at most this many test utterances (the first ones in split order)."""
    center: bool = True
    """Subtract the mean code of the test utterances before the cosine (no labels are used)."""


def both_classes(target: np.ndarray) -> bool:
    """Whether ``target`` (bool) holds target and non-target trials both: what an EER needs."""
    return bool(target.any() and not target.all())


def equal_error_rate(scores: np.ndarray, target: np.ndarray) -> float:
    """EER of ``scores`` (higher = same speaker) for trials whose truth is ``target`` (bool)."""
    from sklearn.metrics import roc_curve

    target = np.asarray(target, dtype=bool)
    if not both_classes(target):
        raise disentangle.DisentangleError("an EER needs both target and non-target trials",
                                           hint="the test split needs at least two speakers, one with two utterances")
    fpr, tpr, _ = roc_curve(target, np.asarray(scores, dtype=np.float64))
    fnr = 1.0 - tpr
    d = fnr - fpr  # decreasing from +1 to -1
    i = int(np.argmax(d <= 0))
    if i == 0:
        return float(fpr[0])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def cosine_matrix(codes: np.ndarray, center: bool) -> np.ndarray:
    c = np.asarray(codes, dtype=np.float64)
    if center:
        c = c - c.mean(0, keepdims=True)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return c @ c.T


def utterance_codes(enc: disentangle.Encoded) -> tuple[list[str], dict[str, str], dict[str, str], np.ndarray, np.ndarray]:
    """Per utterance (in order of first appearance): ids, speaker and content by id, z_f and z_1:T codes."""
    for key in ("utterance", "speaker", "content"):
        if key not in enc.meta:
            raise disentangle.DisentangleError(
                f"the eer metric needs meta['{key}'] on every test item, which this dataset does not give",
                hint="use it with a speech dataset (fsdd, timit)")
    groups: OrderedDict[str, list[int]] = OrderedDict()
    speaker, content = {}, {}
    for i, u in enumerate(enc.meta["utterance"]):
        groups.setdefault(u, []).append(i)
        speaker[u], content[u] = str(enc.meta["speaker"][i]), str(enc.meta["content"][i])
    f = np.stack([enc.f[idx].mean(0) for idx in groups.values()])
    z = np.stack([enc.z[idx].mean((0, 1)) for idx in groups.values()])
    return list(groups), speaker, content, f, z


def trial_table(codes: dict[str, np.ndarray], speakers: list[str], contents: list[str],
                center: bool = True) -> dict[str, float]:
    """Each code's speaker EERs (all pairs; the pairs whose content differs) and content EER (pairs of speakers)."""
    n = len(speakers)
    iu = np.triu_indices(n, k=1)
    spk, con = np.asarray(speakers), np.asarray(contents)
    target = (spk[:, None] == spk[None, :])[iu]
    differs = (con[:, None] != con[None, :])[iu]
    same_content = ~differs[~target]  # content verification, on the trials between different speakers
    content_eer = both_classes(same_content)
    out: dict[str, float] = {"trials": float(len(target)), "target_trials": float(target.sum()),
                             "content_differs_trials": float(differs.sum())}
    if content_eer:
        out.update(content_trials=float(len(same_content)), content_target_trials=float(same_content.sum()))
    for name, c in codes.items():
        scores = cosine_matrix(c, center)[iu]
        out[f"eer/{name}"] = equal_error_rate(scores, target)
        if both_classes(target[differs]):
            out[f"eer/{name}/content_differs"] = equal_error_rate(scores[differs], target[differs])
        if content_eer:
            out[f"content-eer/{name}"] = equal_error_rate(scores[~target], same_content)
    return out


class EER(disentangle.Metric):
    """Speaker-verification EER of z_f, z_1:T and mean MFCCs (see the module docstring)."""

    Config = EERConfig

    def __init__(self, config: EERConfig, ctx: disentangle.BuildContext):
        self.config = config

    def compute(self, ev: disentangle.EvalContext) -> dict[str, float]:
        enc = ev.encoded("test")
        utts, speaker, content, f, z = utterance_codes(enc)
        keep = utts[: self.config.max_utterances]
        codes = {"z_f": f[: len(keep)], "z_t": z[: len(keep)]}
        split = ev.data.split("test")
        mfcc_ids = getattr(split, "utterances", None)
        if mfcc_ids is not None:
            row = {u: i for i, u in enumerate(mfcc_ids)}
            codes["mfcc"] = np.asarray(split.utterance_mfcc)[[row[u] for u in keep]]
        return trial_table(codes, [speaker[u] for u in keep], [content[u] for u in keep], self.config.center)


@disentangle.hookimpl
def register_metrics(register):
    register("eer", EER)
