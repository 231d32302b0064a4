"""Training, checkpoints, exact resume, NaN handling, evaluation pictures, sampling."""

import json
import tomllib
from io import StringIO

import numpy as np
import pytest
import torch
from rich.console import Console

from disentangle import TrainingError
from disentangle.recipe import apply_overrides, parse_recipe
from disentangle.training import CHECKPOINT, load_run, sample, train
from toy_plugins import TOY_RECIPE, toy_registry


def recipe(*overrides):
    raw = apply_overrides(tomllib.loads(TOY_RECIPE), list(overrides))
    return parse_recipe(raw, registry=toy_registry())


def steps_logged(run_dir):
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def resume_output(run_dir, registry):
    """Resume the toy recipe's run in ``run_dir`` to its end; what it printed."""
    out = StringIO()
    train(recipe(), run_dir, resume=True, registry=registry, console=Console(file=out, width=300))
    return out.getvalue()


def test_training_writes_a_complete_run(tmp_path):
    reg = toy_registry()
    result = train(recipe(), tmp_path / "run", registry=reg)
    run = tmp_path / "run"
    assert result.step == result.total_steps == 12  # 3 epochs x 16 // 4
    assert steps_logged(run) == list(range(1, 13))
    ckpt = torch.load(run / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 12
    assert tomllib.loads((run / "recipe.toml").read_text())["train"]["seed"] == 0
    env = json.loads((run / "environment.json").read_text())
    assert env["device"] == "cpu" and env["packages"]["torch"]
    assert env["torch_threads"] == torch.get_num_threads() and env["cpu_capability"]
    for name in ("reconstruction", "generation", "swap", "fixed"):
        assert (run / "images" / f"{name}.png").stat().st_size > 100
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "recon", "kl_f", "kl_z", "z-norm"} <= set(first)


def test_max_steps_caps_training(tmp_path):
    result = train(recipe("train.max_steps=5"), tmp_path / "run", registry=toy_registry())
    assert result.step == 5 and steps_logged(tmp_path / "run") == [1, 2, 3, 4, 5]


def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path):
    reg = toy_registry()
    train(recipe(), tmp_path / "straight", registry=reg)
    train(recipe("train.max_steps=5"), tmp_path / "split", registry=reg)
    # resume with the longer schedule: batches and RNG continue where they stopped
    result = train(recipe(), tmp_path / "split", resume=True, registry=reg)
    assert result.step == 12
    a = torch.load(tmp_path / "straight" / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / CHECKPOINT, weights_only=True)["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit for bit: same process, same threads
    assert steps_logged(tmp_path / "split") == list(range(1, 13))


def test_a_cpu_run_repeats_bit_for_bit(tmp_path):
    """The same recipe and seed with the same thread count: the same losses and weights, to the bit
    (docs/recipes.md, "Resuming", and docs/results.md lean on this)."""
    reg = toy_registry()
    train(recipe(), tmp_path / "a", registry=reg)
    train(recipe(), tmp_path / "b", registry=reg)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    a = torch.load(tmp_path / "a" / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)
    train(recipe("train.seed=1"), tmp_path / "c", registry=reg)  # the check can fail: another seed differs
    c = torch.load(tmp_path / "c" / CHECKPOINT, weights_only=True)["model"]
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_resume_with_another_thread_count_says_it_may_not_repeat(tmp_path):
    reg = toy_registry()
    threads = torch.get_num_threads()
    train(recipe("train.max_steps=5"), tmp_path / "run", registry=reg)
    assert "note:" not in resume_output(tmp_path / "run", reg)  # the same settings: no note
    train(recipe("train.max_steps=5"), tmp_path / "other", registry=reg)
    torch.set_num_threads(1 if threads != 1 else 2)
    try:
        said = resume_output(tmp_path / "other", reg)
    finally:
        torch.set_num_threads(threads)
    assert f"torch_threads {threads} -> {1 if threads != 1 else 2}" in said, said
    assert "environment.json" in said and f"OMP_NUM_THREADS={threads}" in said
    # the resumed run is complete all the same, and its environment.json is this process's
    assert steps_logged(tmp_path / "other") == list(range(1, 13))
    assert json.loads((tmp_path / "other" / "environment.json").read_text())["torch_threads"] != threads


def test_resume_on_other_cpu_kernels_names_them_and_no_thread_hint(tmp_path):
    """Only the instruction set changed: the note names it and does not tell to set the thread count."""
    reg = toy_registry()
    train(recipe("train.max_steps=5"), tmp_path / "run", registry=reg)
    env_path = tmp_path / "run" / "environment.json"
    env = json.loads(env_path.read_text())
    now = env["cpu_capability"]
    env["cpu_capability"] = "OTHER"  # as if written on a CPU with another instruction set
    env_path.write_text(json.dumps(env))
    said = resume_output(tmp_path / "run", reg)
    assert f"cpu_capability OTHER -> {now}" in said, said
    assert "torch_threads" not in said and "OMP_NUM_THREADS" not in said


def test_refuses_to_overwrite_a_run(tmp_path):
    reg = toy_registry()
    train(recipe("train.max_steps=2"), tmp_path / "run", registry=reg)
    with pytest.raises(Exception, match="already holds a run"):
        train(recipe("train.max_steps=2"), tmp_path / "run", registry=reg)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    reg = toy_registry()
    run = tmp_path / "run"
    with pytest.raises(TrainingError, match="non-finite loss at step 5"):
        train(recipe("regularizers.0.explode_at_step=5"), run, registry=reg)
    ckpt = torch.load(run / CHECKPOINT, weights_only=True)
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_load_run_and_sample(tmp_path):
    reg = toy_registry()
    train(recipe("train.max_steps=3"), tmp_path / "run", registry=reg)
    pipe = load_run(tmp_path / "run", "cpu", registry=reg)
    static = sample(pipe, "static", seed=1)
    dynamic = sample(pipe, "dynamic", seed=1)
    assert static["sequences"].shape == (8, 4, 3, 8, 8)  # toy data exports float (no image format)
    assert (static["labels_identity"] == [i % 2 for i in range(8)]).all()
    assert not (static["sequences"] == dynamic["sequences"]).all()
    again = sample(pipe, "static", seed=1)
    assert (again["sequences"] == static["sequences"]).all()


def test_resume_with_a_different_model_is_a_clear_error(tmp_path):
    from disentangle import DisentangleError

    reg = toy_registry()
    train(recipe("train.max_steps=2"), tmp_path / "run", registry=reg)
    with pytest.raises(DisentangleError, match="does not fit the recipe"):
        train(recipe("model.hidden_dim=12"), tmp_path / "run", resume=True, registry=reg)


def test_resume_skips_a_metrics_line_cut_by_a_kill(tmp_path):
    reg = toy_registry()
    run = tmp_path / "run"
    train(recipe("train.max_steps=4"), run, registry=reg)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "lo')  # the process died mid-write
    train(recipe("train.max_steps=6"), run, resume=True, registry=reg)
    assert steps_logged(run) == [1, 2, 3, 4, 5, 6]


def test_a_failing_plugin_loss_names_the_component(tmp_path):
    from disentangle import DisentangleError

    with pytest.raises(DisentangleError, match="the loss of 'z-norm'"):
        train(recipe("regularizers.0.crash=true"), tmp_path / "run", registry=toy_registry())


def test_device_batches_equal_loader_batches(tmp_path):
    """Holding an ArraySplit on the device gives the same batches as the DataLoader path."""
    import disentangle
    from disentangle.training.data import DeviceBatches, LoaderBatches, epoch_batches

    data = disentangle.get_registry().get("dataset", "moving-shapes")
    cfg = data.config(num_train=12, num_test=4, resolution=16)
    split = data.build(cfg, disentangle.BuildContext(cache_dir=tmp_path)).split("train")
    assert isinstance(split, disentangle.ArraySplit)
    order = epoch_batches(len(split), 4, seed=3, epoch=1)
    dev = torch.device("cpu")
    for a, b in zip(LoaderBatches(split, dev)(order, seed=0), DeviceBatches(split, dev)(order, seed=0), strict=True):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["index"], b["index"])
        assert a["labels"].keys() == b["labels"].keys()
        for k in a["labels"]:
            assert torch.equal(a["labels"][k], b["labels"][k])


def test_read_only_stored_arrays_reach_torch_writable(monkeypatch):
    """A memory-mapped (read-only) split is copied before torch wraps it: torch warns on, and may
    write through, a tensor over a read-only numpy array."""
    import numpy as np

    import disentangle
    from disentangle.training.data import DeviceBatches

    class ReadOnly(disentangle.ArraySplit):
        def __init__(self):
            self.x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
            self.y = np.array([[0, 5], [1, 6]])
            self.x.flags.writeable = self.y.flags.writeable = False

        def stored_x(self):
            return self.x

        def stored_labels(self):
            return {"a": self.y[:, 0], "b": self.y[:, 1]}  # read-only, non-contiguous columns

    seen = []

    def recording(real):
        def wrap(a, *args, **kw):
            if isinstance(a, np.ndarray):
                seen.append(a.flags.writeable)
            return real(a, *args, **kw)
        return wrap

    for name in ("from_numpy", "as_tensor"):
        monkeypatch.setattr(torch, name, recording(getattr(torch, name)))
    split = ReadOnly()
    assert torch.equal(split[1]["x"], torch.arange(12, 24).reshape(3, 4).float())
    held = DeviceBatches(split, torch.device("cpu"))
    assert torch.equal(held.x, torch.arange(24).reshape(2, 3, 4).to(torch.uint8))
    assert held.labels["b"].tolist() == [5, 6] and split[1]["labels"] == {"a": 1, "b": 6}
    assert seen and all(seen)


def test_a_non_scalar_loss_names_the_component(tmp_path):
    from disentangle import DisentangleError

    with pytest.raises(DisentangleError, match="the loss of 'z-norm' is \\(4,\\), not a scalar"):
        train(recipe("regularizers.0.per_item=true"), tmp_path / "run", registry=toy_registry())


def test_nan_at_the_first_step_does_not_suggest_resume(tmp_path):
    with pytest.raises(TrainingError) as info:
        train(recipe("regularizers.0.explode_at_step=1"), tmp_path / "run", registry=toy_registry())
    assert "--resume" not in str(info.value) and "no checkpoint was written" in str(info.value)
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_objectives_may_take_the_step(tmp_path):
    seen = []
    reg = toy_registry()
    train(recipe("train.max_steps=3", "regularizers.0.record_steps=true"), tmp_path / "run", registry=reg,
          on_step=lambda step, values: seen.append(step))
    from toy_plugins import STEPS_SEEN

    assert STEPS_SEEN[-3:] == [0, 1, 2] and seen == [1, 2, 3]


def test_resolved_recipe_records_the_device_that_ran(tmp_path):
    train(recipe("train.max_steps=1", "train.device=\"auto\""), tmp_path / "run", registry=toy_registry(),
          device="cpu")
    assert tomllib.loads((tmp_path / "run" / "recipe.toml").read_text())["train"]["device"] == "cpu"


def test_linear_warmup_of_loss_weights():
    from disentangle.training.schedule import linear_warmup, loss_weights

    assert linear_warmup(2.0, 0, 0) == 2.0
    assert [linear_warmup(2.0, 4, s) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    r = recipe("model.kl_warmup=10", "model.beta_z=0.5", "regularizers.0.weight_warmup=4")
    w = loss_weights(r, ["z-norm"], step=1)
    assert w == {"kl_f": 0.2, "kl_z": 0.1, "z-norm": 0.5 * 2 / 4}


def test_warmup_changes_the_trained_loss_and_round_trips(tmp_path):
    reg = toy_registry()
    plain = train(recipe("train.max_steps=2"), tmp_path / "plain", registry=reg)
    warm = train(recipe("train.max_steps=2", "model.kl_warmup=100", "regularizers.0.weight_warmup=100"),
                 tmp_path / "warm", registry=reg)
    first = lambda run: json.loads((run / "metrics.jsonl").read_text().splitlines()[0])  # noqa: E731
    p, w = first(tmp_path / "plain"), first(tmp_path / "warm")
    assert p["vae"] == w["vae"]  # same weights and data at step 1: the ELBO terms agree ...
    assert w["loss"] < p["loss"]  # ... but the weighted total is smaller while warming up
    saved = tomllib.loads((tmp_path / "warm" / "recipe.toml").read_text())
    assert saved["model"]["kl_warmup"] == 100 and saved["regularizers"][0]["weight_warmup"] == 100
    assert plain.step == warm.step == 2


def test_weight_warmup_must_be_a_whole_number(tmp_path):
    from disentangle.recipe import RecipeError

    with pytest.raises(RecipeError, match="regularizers.0.weight_warmup"):
        recipe("regularizers.0.weight_warmup=1.5")


def test_eval_context_encodes_once_and_slices_prefixes(tmp_path):
    """A shorter prefix of an encoded split gets its own reconstruction error, not the longer one's."""
    from disentangle import EvalContext

    reg = toy_registry()
    train(recipe("train.max_steps=2", "eval.images=false"), tmp_path / "run", registry=reg)
    pipe = load_run(tmp_path / "run", "cpu", registry=reg)
    ev = EvalContext(pipe.model, pipe.data, "cpu", batch_size=3)
    full = ev.encoded()
    assert len(full) == 8 and full.z.shape == (8, 4, 2) and list(full.labels["identity"]) == [i % 2 for i in range(8)]
    assert ev.encoded() is full  # cached for the whole evaluation
    fresh = EvalContext(pipe.model, pipe.data, "cpu", batch_size=3).encoded(limit=2)
    prefix = ev.encoded(limit=2)
    assert abs(prefix.recon_mse - fresh.recon_mse) < 1e-6 and np.allclose(prefix.f, fresh.f, atol=1e-6)


def test_eval_context_reconstructs_only_when_read_and_keeps_posterior_scales(tmp_path):
    """Encoding a split does not decode it; the reconstruction error is computed once, when first read,
    from the means held, and equals decoding those means by hand. The posterior standard deviations
    are the model's and draw samples around the means."""
    from disentangle import EvalContext

    reg = toy_registry()
    train(recipe("train.max_steps=2", "eval.images=false"), tmp_path / "run", registry=reg)
    pipe = load_run(tmp_path / "run", "cpu", registry=reg)
    model = pipe.model
    decoded = []
    model.decoder.register_forward_hook(lambda *_: decoded.append(1))
    ev = EvalContext(model, pipe.data, "cpu", batch_size=3)
    enc, prefix = ev.encoded(), ev.encoded(limit=5)
    assert decoded == []  # nothing decoded yet
    err = enc.recon_sq_err
    calls = len(decoded)
    assert calls == 3 and (enc.recon_sq_err == err).all() and len(prefix.recon_sq_err) == 5
    assert len(decoded) == calls  # the prefix reads the full split's errors, no new decoding
    x = torch.stack([pipe.data.split("test")[i]["x"] for i in range(len(enc))])
    with torch.no_grad():
        features = model.encoder(x)
        (f, f_logvar), (z, z_logvar) = model.static_posterior(features), model.dynamic_posterior(features)
        assert all(torch.equal(a, b) for a, b in zip((f, f_logvar, z, z_logvar), sum(model.posteriors(x), ())))
        by_hand = ((model.decoder.mean(model.decode(f, z)) - x) ** 2).flatten(1).sum(1)
    assert torch.allclose(torch.from_numpy(err).float(), by_hand, rtol=1e-5, atol=1e-6)
    assert abs(enc.recon_mse - float(by_hand.sum()) / (len(x) * x[0].numel())) < 1e-6
    assert torch.allclose(torch.from_numpy(enc.f_std), torch.exp(0.5 * f_logvar), atol=1e-6)
    assert torch.allclose(torch.from_numpy(enc.z_std), torch.exp(0.5 * z_logvar), atol=1e-6)
    (fs, zs), (fs2, _) = (enc.sample(torch.Generator().manual_seed(s)) for s in (0, 0))
    assert fs.shape == enc.f.shape and zs.shape == enc.z.shape and (fs == fs2).all()
    assert not (fs == enc.f).any() and (zs != enc.sample(torch.Generator().manual_seed(1))[1]).all()
    assert prefix.f_std.shape == (5, enc.f.shape[1])
