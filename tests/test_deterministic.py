"""``train.deterministic``: on CUDA, kernels that repeat bit for bit instead of the fastest timed ones.

CI has no GPU, so the CUDA branch is checked by handing ``configure`` a CUDA device: it only sets
PyTorch's global switches (and wraps forwards that are never called here)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import tiny_quickstart
from disentangle.training import build_pipeline, train
from disentangle.training.precision import configure


@pytest.fixture
def restore_switches(monkeypatch):
    """Put PyTorch's global switches back as they were, whatever the test set."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32, enabled, warn_only) = saved
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.mark.parametrize("setting", ["on", "off"])
def test_cuda_kernels_timed_or_deterministic(setting, restore_switches, module_cache):
    pipe = build_pipeline(tiny_quickstart(), "cpu", cache_dir=module_cache)
    chosen = configure(pipe.model, torch.device("cuda"), "fp32", "off", "off", deterministic=setting)
    exact = setting == "on"
    assert chosen["deterministic"] is exact
    assert torch.backends.cudnn.benchmark is (not exact)
    assert torch.backends.cudnn.deterministic is exact
    assert torch.are_deterministic_algorithms_enabled() is exact
    assert (os.environ.get("CUBLAS_WORKSPACE_CONFIG") == ":4096:8") is exact
    if exact:  # an op without a deterministic kernel warns rather than stopping a run
        assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_cpu_is_left_alone(restore_switches, module_cache):
    """The CPU's kernels repeat already: "on" changes no global switch there."""
    pipe = build_pipeline(tiny_quickstart(), "cpu", cache_dir=module_cache)
    before = torch.are_deterministic_algorithms_enabled()
    assert configure(pipe.model, torch.device("cpu"), "fp32", "off", "off", deterministic="on")["deterministic"] is True
    assert torch.are_deterministic_algorithms_enabled() is before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_recorded_in_environment_json(tmp_path, module_cache):
    train(tiny_quickstart('train.deterministic="on"', "train.max_steps=2"), tmp_path / "run", cache_dir=module_cache)
    assert json.loads((tmp_path / "run" / "environment.json").read_text())["deterministic"] is True
    assert 'deterministic = "on"' in (tmp_path / "run" / "recipe.toml").read_text()
