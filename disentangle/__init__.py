"""disentangle: self-supervised sequential VAEs (S3VAE) as a small core plus plug-ins.

Everything a plug-in may use is exported here (see ``__all__``) or in :mod:`disentangle.testing`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from disentangle import validators

from disentangle.errors import DisentangleError, PluginConflictError, TrainingError, UnknownComponentError
from disentangle.distributed import World
from disentangle.evaluation import Encoded, EvalContext
from disentangle.hookspecs import hookimpl
from disentangle.interfaces import (
    ArraySplit,
    Audio,
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
    array_record,
    atomic_torch_save,
    cached_array,
    default_cache_dir,
    fingerprint,
    note,
    safe_torch_load,
    track,
    verify_array,
)
from disentangle.model import S3VAE, S3VAEOutput, gaussian_kl, gaussian_log_density
from disentangle.optional import require
from disentangle.pseudo_labels import PseudoLabelTask, label_sequences
from disentangle.recipe import Recipe, load_recipe, parse_override
from disentangle.registry import Component, PluginInfo, Registry, get_registry, load_registry
from disentangle.training import (
    Pipeline,
    TrainResult,
    build_pipeline,
    evaluate,
    load_run,
    resolve_device,
    sample,
    train,
)

try:
    __version__ = version("disentangle")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "ArraySplit",
    "Audio",
    "Batch",
    "BuildContext",
    "Component",
    "DataSpec",
    "Decoder",
    "DisentangleError",
    "Encoded",
    "Encoder",
    "EvalContext",
    "Metric",
    "ModelSpec",
    "Objective",
    "PluginConflictError",
    "Pipeline",
    "PluginInfo",
    "PseudoLabelTask",
    "Recipe",
    "Registry",
    "Regularizer",
    "S3VAE",
    "S3VAEOutput",
    "SequenceData",
    "Task",
    "TrainResult",
    "TrainingError",
    "UnknownComponentError",
    "World",
    "__version__",
    "atomic_path",
    "atomic_save_npy",
    "atomic_torch_save",
    "array_record",
    "build_pipeline",
    "cached_array",
    "default_cache_dir",
    "evaluate",
    "fingerprint",
    "gaussian_kl",
    "gaussian_log_density",
    "get_registry",
    "hookimpl",
    "label_sequences",
    "load_recipe",
    "load_registry",
    "load_run",
    "note",
    "parse_override",
    "require",
    "resolve_device",
    "safe_torch_load",
    "sample",
    "track",
    "train",
    "verify_array",
    "validators",
]
