"""disentangle: self-supervised sequential VAEs (S3VAE) as a small core plus plug-ins.

Everything a plug-in may use is exported here (see ``__all__``) or in :mod:`disentangle.testing`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from disentangle import validators

from disentangle.errors import DisentangleError, PluginConflictError, TrainingError, UnknownComponentError
from disentangle.hookspecs import hookimpl
from disentangle.interfaces import (
    Batch,
    BuildContext,
    DataSpec,
    Decoder,
    Encoder,
    Metric,
    ModelSpec,
    Objective,
    Regularizer,
    SequenceData,
    Task,
)
from disentangle.io import (
    atomic_path,
    atomic_save_npy,
    atomic_torch_save,
    cached_array,
    default_cache_dir,
    fingerprint,
    track,
)
from disentangle.model import S3VAE, S3VAEOutput, gaussian_kl, gaussian_log_density
from disentangle.optional import require
from disentangle.pseudo_labels import PseudoLabelTask, label_sequences
from disentangle.registry import Component, PluginInfo, Registry, get_registry, load_registry

try:
    __version__ = version("disentangle")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "Batch",
    "BuildContext",
    "Component",
    "DataSpec",
    "Decoder",
    "DisentangleError",
    "Encoder",
    "Metric",
    "ModelSpec",
    "Objective",
    "PluginConflictError",
    "PluginInfo",
    "PseudoLabelTask",
    "Registry",
    "Regularizer",
    "S3VAE",
    "S3VAEOutput",
    "SequenceData",
    "Task",
    "TrainingError",
    "UnknownComponentError",
    "__version__",
    "atomic_path",
    "atomic_save_npy",
    "atomic_torch_save",
    "cached_array",
    "default_cache_dir",
    "fingerprint",
    "gaussian_kl",
    "gaussian_log_density",
    "get_registry",
    "hookimpl",
    "label_sequences",
    "load_registry",
    "require",
    "track",
    "validators",
]
