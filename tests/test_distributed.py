"""Data-parallel training under torchrun (2 CPU processes, Gloo): shards, averaged gradients."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from disentangle import DisentangleError
from disentangle.distributed import World, check_batch_size, shard

TESTS = Path(__file__).resolve().parent



def test_shard_splits_each_global_batch():
    batches = [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert shard(batches, World(rank=1, size=2)) == [[1, 3], [5, 7]]
    assert shard(batches, World()) == batches
    with pytest.raises(DisentangleError, match="does not divide"):
        check_batch_size(6, World(rank=0, size=4))


def test_two_processes_train_in_lockstep(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, tomllib, torch
        sys.path.insert(0, {str(TESTS)!r})
        from disentangle.recipe import apply_overrides, parse_recipe
        from disentangle.training import train
        import disentangle.training.loop as loop
        from toy_plugins import TOY_RECIPE, toy_registry

        reg = toy_registry(entry_points=True)
        # the built-in regularizers that gather the global batch (with gradients) inside the step
        regs = 'regularizers=[{{use = "z-norm", weight = 0.5}}, {{use = "triplet-scc", weight = 1.0}}, {{use = "mi-mws", weight = 1.0}}]'
        recipe = parse_recipe(apply_overrides(tomllib.loads(TOY_RECIPE), ["train.max_steps=5", regs]), registry=reg)
        seen = {{}}
        real_build = loop.build_pipeline
        def build(*args, **kwargs):
            seen["pipe"] = real_build(*args, **kwargs)
            return seen["pipe"]
        loop.build_pipeline = build
        result = train(recipe, {str(tmp_path / "run")!r}, registry=reg)
        rank = os.environ["RANK"]
        torch.save({{"step": result.step, "model": seen["pipe"].model.state_dict()}},
                   {str(tmp_path)!r} + f"/rank{{rank}}.pt")
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 5
    for key, value in r0["model"].items():
        assert torch.equal(value, r1["model"][key]), f"{key} differs between the processes"
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["step"] == 5
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 5  # rank 0 alone logs
    # the shards differ, so without averaged gradients the weights would have drifted apart
    untrained = build_untrained()
    assert any(not torch.equal(untrained[k], r0["model"][k]) for k in untrained)


def build_untrained():
    import tomllib

    from disentangle.recipe import parse_recipe
    from disentangle.training import build_pipeline, seed_everything
    from toy_plugins import TOY_RECIPE, toy_registry

    seed_everything(0)
    return build_pipeline(parse_recipe(tomllib.loads(TOY_RECIPE), registry=toy_registry()), "cpu",
                          toy_registry()).model.state_dict()


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, monkeypatch):
    """With the sampling noise switched off (posterior means), DistributedDataParallel over 2 shards
    gives the weights of one process on the whole global batch: the averaged shard gradients are the
    gradient of the global batch mean."""
    import tomllib

    import disentangle.model
    from disentangle.recipe import apply_overrides, parse_recipe
    from disentangle.training import train
    from toy_plugins import TOY_RECIPE, toy_registry

    # mi-mws scores each process's samples under the posteriors of the whole global batch, and
    # mi-club compares each z_t with the global batch's: without the gather, each process's estimate
    # would be a smaller batch's and the weights would differ (mi-club at 10: at 1 its pull on the toy
    # model is below the tolerance)
    overrides = ["train.max_steps=4", "train.checkpoint_every=4", "eval.images=false",
                 "regularizers=[{use = \"z-norm\", weight = 0.5}, {use = \"mi-mws\", weight = 1.0}, "
                 "{use = \"mi-club\", weight = 10.0, hidden = 8}]"]
    script = tmp_path / "ddp_equal.py"
    script.write_text(textwrap.dedent(f"""
        import sys, tomllib
        sys.path.insert(0, {str(TESTS)!r})
        import disentangle.model
        disentangle.model.reparameterize = lambda mean, logvar: mean  # no sampling noise
        from disentangle.recipe import apply_overrides, parse_recipe
        from disentangle.training import train
        from toy_plugins import TOY_RECIPE, toy_registry
        reg = toy_registry(entry_points=True)  # the built-in mi-mws too
        recipe = parse_recipe(apply_overrides(tomllib.loads(TOY_RECIPE), {overrides!r}), registry=reg)
        train(recipe, {str(tmp_path / "two")!r}, registry=reg)
    """))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(script)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    monkeypatch.setattr(disentangle.model, "reparameterize", lambda mean, logvar: mean)
    reg = toy_registry(entry_points=True)  # the built-in mi-mws too
    train(parse_recipe(apply_overrides(tomllib.loads(TOY_RECIPE), overrides), registry=reg), tmp_path / "one",
          registry=reg)
    two = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)
    assert two["step"] == one["step"] == 4 and len(two["rng_ranks"]) == 2
    for key, value in one["model"].items():
        assert torch.allclose(value, two["model"][key], atol=1e-5), key
    untrained = build_untrained()
    assert any(not torch.allclose(untrained[k], one["model"][k], atol=1e-4) for k in untrained)
