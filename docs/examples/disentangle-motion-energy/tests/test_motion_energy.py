"""Tests of the motion-energy plug-in, built on the contract checks of ``disentangle.testing``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import disentangle
from disentangle.io import save_array
import disentangle_motion_energy as me
from disentangle import testing


class KnownData(disentangle.SequenceData):
    """Two train sequences of three 1x2x2 frames whose motion energies are easy to work out."""

    def __init__(self):
        a = torch.tensor([
            [[[0.0, 0.0], [0.0, 0.0]]],   # frame 0
            [[[0.5, 0.5], [0.5, 0.5]]],   # frame 1: every pixel +0.5   -> e_1 = 0.5
            [[[0.5, 0.5], [0.5, 1.0]]],   # frame 2: one pixel of 4 +0.5 -> e_2 = 0.125
        ])
        b = torch.zeros_like(a)           # no motion: e_1 = e_2 = 0
        self.spec = disentangle.DataSpec(feature_shape=(1, 2, 2), seq_len=3)
        self._train = [{"x": a, "labels": {}}, {"x": b, "labels": {}}]

    def split(self, name):
        return self._train

    @property
    def fingerprint(self):
        return "known-answer-v1"


def test_known_energies():
    data = KnownData()
    assert np.allclose(me.motion_energy(data.split("train")[0]["x"]), [0.5, 0.125])
    raw = me.compute_energies(data)
    assert raw.dtype == np.float32 and raw.shape == (2, 2)
    assert np.allclose(raw, [[0.5, 0.125], [0.0, 0.0]])
    # The train-set mean of the energies is (0.5 + 0.125 + 0 + 0) / 4 = 0.15625.
    assert np.allclose(me.make_targets(raw, "copy", normalize=False), [[0.5, 0.5, 0.125], [0, 0, 0]])
    assert np.allclose(me.make_targets(raw, "zero", normalize=False), [[0, 0.5, 0.125], [0, 0, 0]])
    assert np.allclose(me.make_targets(raw, "copy", normalize=True), [[3.2, 3.2, 0.8], [0, 0, 0]])
    # A dataset without any motion keeps all-zero targets instead of dividing by zero.
    assert np.array_equal(me.make_targets(np.zeros((2, 2)), "copy", True), np.zeros((2, 3), np.float32))


def test_prepare_caches_and_selects_rows_by_index(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(1, 2, 2), seq_len=3, dataset_size=2, batch_size=2)
    data = KnownData()
    task = me.MotionEnergy(me.MotionEnergy.Config(normalize=False), ctx)
    task.prepare(data, ctx)
    expected = tmp_path / "motion-energy" / f"{disentangle.fingerprint(data.fingerprint, 'motion-energy', me.CACHE_VERSION)}.npy"
    assert task.cache_path == expected and expected.is_file()
    assert np.allclose(np.load(expected), [[0.5, 0.125], [0.0, 0.0]])
    # The second prepare reads the cache; a file changed behind its record is noticed and recomputed.
    np.save(expected, np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    task.prepare(data, ctx)
    assert torch.allclose(task.targets, torch.tensor([[0.5, 0.5, 0.125], [0.0, 0.0, 0.0]]))
    # A recorded cache entry is what the next prepare reads.
    save_array(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), expected, task.cache_key(data))
    task.prepare(data, ctx)
    assert torch.allclose(task.targets, torch.tensor([[1.0, 1.0, 2.0], [3.0, 3.0, 4.0]]))
    # Batches pick their targets by batch["index"]; a head that predicts them exactly has zero loss.
    batch = {"x": torch.zeros(2, 3, 1, 2, 2), "index": torch.tensor([1, 0]), "labels": {}}
    model = testing.tiny_model(ctx)
    out = model(batch["x"])
    task.predict = lambda z: torch.tensor([[3.0, 3.0, 4.0], [1.0, 1.0, 2.0]])
    assert float(task.loss(batch, out, model)) == 0.0


def test_stale_cache_shape_is_a_clear_error(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(1, 2, 2), seq_len=3)
    data = KnownData()
    task = me.MotionEnergy(me.MotionEnergy.Config(), ctx)
    path = tmp_path / "motion-energy" / f"{task.cache_key(data)}.npy"
    save_array(np.zeros((5, 7), np.float32), path, task.cache_key(data))  # recorded, but the wrong shape
    with pytest.raises(disentangle.DisentangleError, match="disentangle cache clear"):
        task.prepare(data, ctx)


@pytest.mark.parametrize("config", [me.MotionEnergy.Config(),
                                    me.MotionEnergy.Config(hidden=8, normalize=False, first_frame="zero")])
def test_objective_contract(tmp_path, config):
    ctx = testing.tiny_context(tmp_path)
    task = me.MotionEnergy(config, ctx)
    loss = testing.check_objective(task, ctx, data=testing.ToyData(ctx))
    assert loss >= 0


def test_loss_stays_on_the_device(tmp_path):
    ctx = testing.tiny_context(tmp_path)
    testing.check_stays_on_device(me.MotionEnergy(me.MotionEnergy.Config(), ctx), ctx)


def test_config_roundtrip_and_validation():
    testing.check_config_roundtrip(me.MotionEnergy.Config())
    testing.check_config_roundtrip(me.MotionEnergy.Config(hidden=4, normalize=False, first_frame="zero"))
    with pytest.raises(ValueError):
        me.MotionEnergy.Config(hidden=0)
    with pytest.raises(ValueError):
        me.MotionEnergy.Config(first_frame="last")


def test_single_frame_sequences_are_rejected(tmp_path):
    ctx = testing.tiny_context(tmp_path, seq_len=1)
    with pytest.raises(disentangle.DisentangleError, match="at least 2 frames"):
        me.MotionEnergy(me.MotionEnergy.Config(), ctx)


def test_registers_the_task():
    reg = disentangle.load_registry(entry_points=False, extra=[("motion-energy", me)])
    assert reg.plugins[0].status == "ok", reg.plugins[0].error
    comp = reg.get("task", "motion-energy")
    assert comp.factory is me.MotionEnergy and comp.config is me.MotionEnergyConfig


def test_installed_entry_point_is_found():
    """After ``pip install -e .`` the core finds the plug-in through its entry point."""
    reg = disentangle.load_registry()
    info = {p.name: p for p in reg.plugins}.get("motion-energy")
    if info is None:
        if os.environ.get("DISENTANGLE_REQUIRE_EXAMPLE"):
            pytest.fail("disentangle-motion-energy is not installed (pip install -e .)")
        pytest.skip("disentangle-motion-energy is not installed (pip install -e .)")
    assert info.status == "ok", info.error
    assert info.components == {"task": ["motion-energy"]}
