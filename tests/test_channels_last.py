"""``train.channels_last``: the conv networks' weights stored NHWC give the same training, and
checkpoints load into either layout."""

from __future__ import annotations

import json

import pytest
import torch

import disentangle
from conftest import tiny_quickstart
from disentangle.training import CHECKPOINT, build_pipeline, load_run, train
from disentangle.training.precision import configure

def test_configure_stores_conv_weights_nhwc(module_cache):
    pipe = build_pipeline(tiny_quickstart(), "cpu", cache_dir=module_cache)
    chosen = configure(pipe.model, torch.device("cpu"), "fp32", "off", "on")
    assert chosen["channels_last"] is True
    convs = [p for p in pipe.model.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    # "auto" leaves the CPU alone
    pipe = build_pipeline(tiny_quickstart(), "cpu", cache_dir=module_cache)
    assert configure(pipe.model, torch.device("cpu"), "fp32", "off", "auto")["channels_last"] is False
    assert all(p.is_contiguous() for p in pipe.model.parameters())


def test_channels_last_trains_the_same_and_checkpoints_load_either_way(tmp_path, module_cache):
    nchw = train(tiny_quickstart("train.channels_last=\"off\""), tmp_path / "nchw", cache_dir=module_cache)
    nhwc = train(tiny_quickstart("train.channels_last=\"on\""), tmp_path / "nhwc", cache_dir=module_cache)
    assert json.loads((tmp_path / "nhwc" / "environment.json").read_text())["channels_last"] is True
    for key in ("loss", "recon", "kl_f", "kl_z"):
        assert nhwc.last_losses[key] == pytest.approx(nchw.last_losses[key], rel=1e-3, abs=1e-3), key
    a = torch.load(tmp_path / "nchw" / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "nhwc" / CHECKPOINT, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4)
    # a checkpoint written NHWC loads into a plain model (load_run builds one)
    run = load_run(tmp_path / "nhwc", device="cpu")
    assert all(p.is_contiguous() for p in run.model.parameters())


def test_resume_stays_exact_with_channels_last(tmp_path, module_cache):
    train(tiny_quickstart("train.channels_last=\"on\""), tmp_path / "straight", cache_dir=module_cache)
    train(tiny_quickstart("train.channels_last=\"on\"", "train.max_steps=3"), tmp_path / "split", cache_dir=module_cache)
    train(tiny_quickstart("train.channels_last=\"on\""), tmp_path / "split", resume=True, cache_dir=module_cache)
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / CHECKPOINT, weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key
