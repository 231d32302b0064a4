import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder (label caches, dataset builds)."""
    monkeypatch.setenv("DISENTANGLE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DISENTANGLE_DISABLE_PLUGINS", raising=False)
    yield


@pytest.fixture(scope="session", autouse=True)
def _threads():
    """Up to 2 threads for this process, and 1 for each process a test starts (`disentangle run`
    subprocesses, torchrun's workers): with PyTorch's default of a thread per core, a busy process on
    one of 2 cores slowed the kill-and-resume test's resume from under 10 s to over 5 minutes
    (docs/performance.md)."""
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


#: The quickstart recipe shrunk to seconds: 16x16 frames, T = 4, two conv blocks with batch norm.
TINY_QUICKSTART = [
    "data.num_train=32", "data.num_test=8", "data.resolution=16", "data.seq_len=4",
    "model.encoder.channels=[8, 8]", "model.decoder.channels=[8, 8]", "model.encoder.norm=\"batch\"",
    "model.decoder.norm=\"batch\"", "train.batch_size=8", "train.max_steps=8", "train.checkpoint_every=4",
    "eval.images=false", "eval.metrics=[]", "train.device=\"cpu\""]


def tiny_quickstart(*overrides):
    """``recipes/quickstart.toml`` with :data:`TINY_QUICKSTART` and then ``overrides``."""
    import disentangle

    return disentangle.load_recipe(str(ROOT / "recipes" / "quickstart.toml"), TINY_QUICKSTART + list(overrides),
                                   disentangle.get_registry())


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """A cache folder shared by a module's tests (data and pseudo-labels built once)."""
    return tmp_path_factory.mktemp("cache")
