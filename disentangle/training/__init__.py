"""Training a recipe, split by concern (each module answers one question):

- :mod:`~disentangle.training.build`: building a recipe's components into a :class:`Pipeline`;
- :mod:`~disentangle.training.data`: data order and how batches reach the device;
- :mod:`~disentangle.training.state`: seeding, RNG state and checkpoints;
- :mod:`~disentangle.training.precision`: autocast, memory layout, compilation and the choice of kernels;
- :mod:`~disentangle.training.graph`: the whole step as one CUDA graph;
- :mod:`~disentangle.training.rundir`: environment.json and the buffered step log;
- :mod:`~disentangle.training.loop`: the loop (:class:`Trainer`: setup / train / save_checkpoint);
- :mod:`~disentangle.training.evaluate`: evaluation, reloading a run, sample export;
- :mod:`~disentangle.training.guard`: plug-in exceptions as messages naming the component.
"""

from disentangle.training.build import Pipeline, build_pipeline, resolve_device
from disentangle.training.evaluate import eval_context, evaluate, load_run, read_run_recipe, sample
from disentangle.training.loop import Trainer, TrainResult, train
from disentangle.training.state import CHECKPOINT, load_checkpoint, seed_everything

__all__ = ["CHECKPOINT", "Pipeline", "TrainResult", "Trainer", "build_pipeline", "eval_context", "evaluate",
           "load_checkpoint", "load_run", "read_run_recipe", "resolve_device", "sample", "seed_everything", "train"]
