"""``volume``: a DFP task for speech. Per frame: voiced (1) or silent (0), predicted from z_t.

A frame is voiced when its energy is within ``threshold_db`` of the loudest frame of its utterance
(the energies come with the speech datasets: ``split("train").energy``, dB relative to the
utterance's peak, see :mod:`disentangle_plugins.speech.corpus`). A head ``z_t -> hidden -> ReLU -> 1``
predicts it with binary cross-entropy: a :class:`disentangle.PseudoLabelTask` with
``loss_kind = "binary"``; the labels are cached in ``<cache_dir>/volume/``.
"""

from __future__ import annotations

import attrs
import numpy as np

import disentangle


@attrs.frozen
class VolumeConfig:
    threshold_db: float = attrs.field(default=30.0, validator=attrs.validators.gt(0.0))
    """A frame within this many dB of its utterance's loudest frame is voiced."""
    hidden: int = attrs.field(default=64, validator=disentangle.validators.positive_int)
    """Width of the prediction head's hidden layer."""


def voiced(energy_db: np.ndarray, threshold_db: float) -> np.ndarray:
    """uint8 labels: 1 where ``energy_db`` (relative to the utterance's peak, <= 0) >= ``-threshold_db``."""
    return (np.asarray(energy_db) >= -threshold_db).astype(np.uint8)


class Volume(disentangle.PseudoLabelTask):
    """Predict voiced/silent frames from ``z_t`` (see the module docstring)."""

    Config = VolumeConfig
    name = "volume"
    loss_kind = "binary"

    def __init__(self, config: VolumeConfig, ctx: disentangle.BuildContext):
        super().__init__(config, ctx, width=None, hidden=config.hidden)

    def cache_params(self) -> tuple:
        return (self.config.threshold_db,)

    def compute_labels(self, data: disentangle.SequenceData) -> np.ndarray:
        energy = getattr(data.split("train"), "energy", None)
        if energy is None:
            raise disentangle.DisentangleError(
                "the volume task needs frame energies, which this dataset does not give",
                hint="use it with a speech dataset (fsdd, timit), or remove it from [[tasks]]")
        return voiced(energy, self.config.threshold_db)


@disentangle.hookimpl
def register_tasks(register):
    register("volume", Volume)
