"""``train.compile = "on"``: compiled encoder and decoder keep plain state-dict keys, and resume
stays exact (on CPU, with TorchInductor)."""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import tiny_quickstart
from disentangle.training import CHECKPOINT, train


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")),
                    reason="TorchInductor needs a C++ compiler on CPU")
def test_compiled_runs_keep_plain_keys_and_resume_exactly(tmp_path, module_cache):
    on = 'train.compile="on"'
    train(tiny_quickstart(on, "train.max_steps=4", "train.checkpoint_every=2"), tmp_path / "straight",
          cache_dir=module_cache)
    train(tiny_quickstart(on, "train.max_steps=2", "train.checkpoint_every=2"), tmp_path / "split",
          cache_dir=module_cache)
    train(tiny_quickstart(on, "train.max_steps=4", "train.checkpoint_every=2"), tmp_path / "split", resume=True,
          cache_dir=module_cache)
    assert '"compiled": true' in (tmp_path / "straight" / "environment.json").read_text()
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)
    b = torch.load(tmp_path / "split" / CHECKPOINT, weights_only=True)
    assert a["step"] == b["step"] == 4
    assert not [k for k in a["model"] if "_orig_mod" in k], "compiled modules must not rename the state dict"
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
