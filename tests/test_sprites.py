"""Tests of the ``sprites`` dataset plug-in against shared/data/lpc-sprites/PROTOCOL.md.

Tests that need the layer sheets skip when the folder is absent (set DISENTANGLE_SPRITES_ROOT to
point elsewhere). The protocol facts (cell table, split, loader shuffle) are restated here
independently of the plug-in, so a wrong table in the plug-in fails a test.
"""

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import disentangle
from disentangle import testing
from disentangle.interfaces import stored_tensor
from disentangle_plugins.video import sprites
from disentangle_plugins.video.sprites import Sprites

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared/data/lpc-sprites"
ROOT = Path(os.environ.get("DISENTANGLE_SPRITES_ROOT") or DEFAULT_ROOT)
LAYER_DIRS = ("body", "bottomwear", "topwear", "hair", "shoes")

# PROTOCOL §10: sums of all uint8 RGB values of one (8, 64, 64, 3) sequence.
REFERENCE_SUMS = {  # s: (factors, walk-front, walk-left, spellcast-front, slash-right)
    0: ((0, 0, 0, 0), 2525222, 1806121, 2696296, 2046458),
    884: ((4, 0, 3, 2), 2731432, 2104466, 2852528, 2309626),
    1116: ((5, 1, 0, 0), 1736668, 1267759, 1835309, 1463831),
    1295: ((5, 5, 5, 5), 2735830, 2098332, 2759403, 2269695),
}
REFERENCE_SEQUENCES = ((0, 0), (0, 1), (1, 0), (2, 2))  # (action, direction) of the columns above

# PROTOCOL §3, restated: action -> (rows for front/left/right, columns at t = 0..7).
CELL_TABLE = {
    0: ((10, 9, 11), (8, 1, 2, 3, 4, 5, 6, 7)),  # walk
    1: ((2, 1, 3), (0, 1, 2, 3, 4, 5, 4, 6)),  # spellcast
    2: ((14, 13, 15), (0, 1, 2, 3, 4, 5, 4, 0)),  # slash
}


@pytest.fixture(scope="module")
def root() -> Path:
    if not (ROOT / "body").is_dir():
        pytest.skip(f"Sprites layers not found at {ROOT} (set DISENTANGLE_SPRITES_ROOT)")
    return ROOT


@pytest.fixture(scope="module")
def split_file(root) -> dict:
    path = root / "split_seed423.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())


def _ctx(cache_dir: Path) -> disentangle.BuildContext:
    return disentangle.BuildContext(cache_dir=Path(cache_dir))


def _linked_root(src: Path, dst: Path) -> Path:
    """A copy of the data folder made of symlinks (so single files can be changed)."""
    dst.mkdir()
    for name in LAYER_DIRS:
        (dst / name).mkdir()
        for f in (src / name).iterdir():
            (dst / name / f.name).symlink_to(f)
    if (src / "split_seed423.json").exists():
        (dst / "split_seed423.json").symlink_to(src / "split_seed423.json")
    return dst


# ----- protocol facts ------------------------------------------------------------------------------

@pytest.mark.parametrize("s", sorted(REFERENCE_SUMS))
def test_reference_sums(root, s):
    factors, *sums = REFERENCE_SUMS[s]
    assert sprites.character_factors(s) == factors
    for (action, direction), want in zip(REFERENCE_SEQUENCES, sums):
        seq = sprites.compose_sequence(root, s, action, direction)
        assert seq.shape == (8, 64, 64, 3) and seq.dtype == np.uint8
        assert int(seq.sum(dtype=np.int64)) == want, (s, action, direction)


def test_compose_matches_full_sheet_compositing(root):
    """Composite whole sheets from scratch with Pillow and cut cells by the restated table."""
    s = 884
    body, bottom, top, hair = 4, 0, 3, 2
    canvas = Image.new("RGBA", (832, 1344), (0, 0, 0, 255))
    for rel in (f"body/{body}.png", f"bottomwear/{bottom}.png", f"topwear/{top}.png", f"hair/{hair}.png",
                "shoes/1.png"):
        canvas = Image.alpha_composite(canvas, Image.open(root / rel).convert("RGBA"))
    sheet = np.asarray(canvas)
    assert (sheet[..., 3] == 255).all()
    character = sprites.compose_character(root, s)
    assert character.shape == (3, 3, 8, 64, 64, 3)
    for action, (rows, cols) in CELL_TABLE.items():
        for direction, row in enumerate(rows):
            want = np.stack([sheet[64 * row:64 * row + 64, 64 * c:64 * c + 64, :3] for c in cols])
            np.testing.assert_array_equal(character[action, direction], want)
            np.testing.assert_array_equal(sprites.compose_sequence(root, s, action, direction), want)
    # names work as well as indices
    np.testing.assert_array_equal(sprites.compose_sequence(root, s, "slash", "left"), character[2, 1])


def test_characters_are_distinct_and_small(root):
    frames = {s: sprites.compose_sequence(root, s, 0, 0)[0] for s in (0, 1, 6, 36, 216)}
    keys = {f.tobytes() for f in frames.values()}
    assert len(keys) == len(frames), "changing one factor must change the picture"
    for f in frames.values():
        lit = int((f.sum(-1) > 0).sum())
        assert 775 <= lit <= 1190, lit  # PROTOCOL §10


def test_split_matches_file(root, split_file):
    train, test = sprites.character_split()
    assert train.tolist() == split_file["train"]
    assert test.tolist() == split_file["test"]
    assert len(train) == 1000 and len(test) == 296
    assert train[:5].tolist() == [1116, 1135, 17, 469, 1293]
    assert test[:5].tolist() == [884, 1285, 252, 297, 947] and test[-1] == 1262
    assert sorted(train.tolist() + test.tolist()) == list(range(1296))
    assert sprites.check_split_file(root) is True


def test_split_file_disagreeing_is_an_error(root, split_file, tmp_path):
    bad = _linked_root(root, tmp_path / "data")
    (bad / "split_seed423.json").unlink()
    swapped = dict(split_file, train=[split_file["test"][0]] + split_file["train"][1:],
                   test=[split_file["train"][0]] + split_file["test"][1:])
    (bad / "split_seed423.json").write_text(json.dumps(swapped))
    with pytest.raises(disentangle.DisentangleError, match="split_seed423.json"):
        sprites.check_split_file(bad)
    with pytest.raises(disentangle.DisentangleError, match="disagrees"):
        Sprites(Sprites.Config(root=str(bad), resolution=32), _ctx(tmp_path / "cache"))
    assert not list((tmp_path / "cache").glob("*/manifest.json"))


def test_label_mapping():
    assert sprites.character_factors(0) == (0, 0, 0, 0)
    assert sprites.character_factors(1) == (0, 0, 0, 1)
    assert sprites.character_factors(6) == (0, 0, 1, 0)
    assert sprites.character_factors(36) == (0, 1, 0, 0)
    assert sprites.character_factors(216) == (1, 0, 0, 0)
    assert sprites.character_factors(884) == (4, 0, 3, 2)
    assert sprites.character_factors(1295) == (5, 5, 5, 5)
    for s in range(1296):
        assert sprites.character_index(*sprites.character_factors(s)) == s
    with pytest.raises(ValueError):
        sprites.character_factors(1296)
    labels = sprites.sequence_labels(884, action=2, direction=1)
    assert labels == {"action": 2, "direction": 1, "dynamic": 7, "body": 4, "bottom": 0, "top": 3, "hair": 2}
    assert [3 * a + d for a in range(3) for d in range(3)] == list(range(9))
    assert sprites.frame_cells("walk", "front")[0] == (10, 8)
    assert sprites.frame_cells(1, 2) == [(3, c) for c in (0, 1, 2, 3, 4, 5, 4, 6)]


def test_downsample_is_rounded_2x2_mean():
    frames = np.array([[[[0], [1]], [[1], [0]]], [[[255], [255]], [[255], [254]]]], dtype=np.uint8)
    out = sprites.downsample2(frames)  # (2, 1, 1, 1): means 0.5 -> 1, 254.75 -> 255
    assert out.dtype == np.uint8 and out.reshape(-1).tolist() == [1, 255]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 8, 64, 64, 3), dtype=np.uint8)
    want = np.floor(x.reshape(3, 8, 32, 2, 32, 2, 3).astype(np.float64).mean(axis=(3, 5)) + 0.5)
    np.testing.assert_array_equal(sprites.downsample2(x), want.astype(np.uint8))


# ----- config and errors (no data needed) --------------------------------------------------------

def test_config_validation_and_roundtrip():
    testing.check_config_roundtrip(Sprites.Config())
    testing.check_config_roundtrip(Sprites.Config(root="x", resolution=32, max_train=5, max_test=3, scale="256"))
    for bad in ({"resolution": 48}, {"scale": "100"}, {"max_train": 0}, {"max_test": -1}, {"root": 3}):
        with pytest.raises((ValueError, TypeError)):
            Sprites.Config(**bad)


def test_missing_root_errors(tmp_path):
    with pytest.raises(disentangle.DisentangleError) as info:
        Sprites(Sprites.Config(), _ctx(tmp_path))
    assert "data.root" in str(info.value) and info.value.hint
    missing = tmp_path / "nowhere"
    with pytest.raises(disentangle.DisentangleError) as info:
        Sprites(Sprites.Config(root=str(missing)), _ctx(tmp_path))
    assert str(missing) in str(info.value) and "data.root" in str(info.value.hint)


def _fake_root(path: Path, size=(832, 1344)) -> Path:
    for rel in [f"{d}/{v}.png" for d in LAYER_DIRS[:4] for v in range(6)] + ["shoes/1.png"]:
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGBA", size).save(path / rel)
    return path


def test_missing_layer_file_error(tmp_path):
    fake = _fake_root(tmp_path / "data")
    (fake / "hair" / "3.png").unlink()
    with pytest.raises(disentangle.DisentangleError, match="missing") as info:
        Sprites(Sprites.Config(root=str(fake)), _ctx(tmp_path / "cache"))
    assert str(fake / "hair" / "3.png") in str(info.value)


def test_wrong_sheet_size_error(tmp_path):
    fake = _fake_root(tmp_path / "data", size=(64, 64))
    with pytest.raises(disentangle.DisentangleError, match="64x64") as info:
        Sprites(Sprites.Config(root=str(fake)), _ctx(tmp_path / "cache"))
    assert "body/0.png" in str(info.value) and "832x1344" in str(info.value)
    assert not list((tmp_path / "cache").glob("*/manifest.json"))


def test_registered_as_dataset():
    reg = disentangle.load_registry(entry_points=False, extra=[("sprites", sprites)])
    comp = reg.get("dataset", "sprites")
    assert comp.factory is Sprites and comp.config is Sprites.Config


# ----- the full build (resolution 32) ------------------------------------------------------------

@pytest.fixture(scope="module")
def built(root, tmp_path_factory):
    cache = tmp_path_factory.mktemp("sprites-cache")
    data = Sprites(Sprites.Config(root=str(root), resolution=32), _ctx(cache))
    return data, cache


def _expected_rows(split_file) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(character, action, direction) per row, straight from PROTOCOL §8."""
    rs = np.random.RandomState(0)
    out = {}
    for name in ("train", "test"):
        chars = np.asarray(split_file[name])
        perm = rs.permutation(9 * len(chars))
        block, pos = perm // len(chars), perm % len(chars)
        out[name] = (chars[pos], block // 3, block % 3)
    return out


def test_full_build_shapes_and_labels(built, split_file):
    data, cache = built
    assert data.spec == disentangle.DataSpec(
        feature_shape=(3, 32, 32), seq_len=8,
        static_factors={"body": 6, "bottom": 6, "top": 6, "hair": 6},
        dynamic_factors={"action": 3, "direction": 3, "dynamic": 9})
    assert data.cache_path.parent == cache and data.cache_path.name.startswith("sprites-")
    expected = _expected_rows(split_file)
    for name, n in (("train", 9000), ("test", 2664)):
        split = data.split(name)
        assert len(split) == n
        assert split.x.shape == (n, 8, 32, 32, 3) and split.x.dtype == np.uint8
        char, action, direction = expected[name]
        labels = split.labels
        np.testing.assert_array_equal(labels["character"], char)
        np.testing.assert_array_equal(labels["action"], action)
        np.testing.assert_array_equal(labels["direction"], direction)
        np.testing.assert_array_equal(labels["dynamic"], 3 * action + direction)
        np.testing.assert_array_equal(labels["body"], char // 216)
        np.testing.assert_array_equal(labels["bottom"], (char // 36) % 6)
        np.testing.assert_array_equal(labels["top"], (char // 6) % 6)
        np.testing.assert_array_equal(labels["hair"], char % 6)
    assert data.split("train").labels["character"][:3].tolist() != data.split("test").labels["character"][:3].tolist()


def test_full_build_content(built, root):
    data, _ = built
    for name, index in (("train", 0), ("train", 8999), ("test", 0), ("test", 2663)):
        split = data.split(name)
        item = split[index]
        labels = item["labels"]
        assert set(labels) == {"action", "direction", "dynamic", "body", "bottom", "top", "hair"}
        s = sprites.character_index(labels["body"], labels["bottom"], labels["top"], labels["hair"])
        assert s == split.labels["character"][index]
        want = sprites.downsample2(sprites.compose_sequence(root, s, labels["action"], labels["direction"]))
        x = item["x"]
        assert x.dtype == torch.float32 and tuple(x.shape) == (8, 3, 32, 32)
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        np.testing.assert_array_equal((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), want)
        # export inverts the item scaling; to_images keeps [0, 1] images
        exported = data.export(x[None])
        assert exported.dtype == np.uint8 and exported.shape == (1, 8, 32, 32, 3)
        np.testing.assert_array_equal(exported[0], want)
        assert torch.equal(data.to_images(x[None]), x[None])
    assert float(data.to_images(torch.full((1, 8, 3, 32, 32), 2.0)).max()) == 1.0


def test_full_build_contract(built):
    data, _ = built
    testing.check_dataset(data)
    loader = torch.utils.data.DataLoader(data.split("test"), batch_size=4)
    batch = next(iter(loader))
    assert tuple(batch["x"].shape) == (4, 8, 3, 32, 32) and tuple(batch["labels"]["dynamic"].shape) == (4,)


def test_cache_is_reused(built, root, monkeypatch):
    data, cache = built
    files = sorted(data.cache_path.iterdir())
    assert {f.name for f in files} >= {"train_x.npy", "test_x.npy", "train_labels.npy", "test_labels.npy",
                                       "manifest.json"}
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt although the cache was complete")

    monkeypatch.setattr(sprites, "build", no_build)
    again = Sprites(Sprites.Config(root=str(root), resolution=32), _ctx(cache))
    assert again.fingerprint == data.fingerprint and again.cache_path == data.cache_path
    assert {f: f.stat().st_mtime_ns for f in sorted(data.cache_path.iterdir())} == mtimes

    small = Sprites(Sprites.Config(root=str(root), resolution=32, max_train=10, max_test=5), _ctx(cache))
    assert len(small.split("train")) == 10 and len(small.split("test")) == 5
    assert small.fingerprint != data.fingerprint
    assert torch.equal(small.split("train")[9]["x"], data.split("train")[9]["x"])
    testing.check_dataset(small)

    scaled = Sprites(Sprites.Config(root=str(root), resolution=32, scale="256"), _ctx(cache))
    assert scaled.fingerprint != data.fingerprint
    x256, x255 = scaled.split("test")[0]["x"], data.split("test")[0]["x"]
    assert torch.allclose(x256 * 256, x255 * 255, atol=1e-3) and float(x256.max()) <= 255 / 256
    np.testing.assert_array_equal(scaled.export(x256[None]), data.export(x255[None]))


def test_interrupted_build_is_redone(built, root, tmp_path, monkeypatch):
    data, cache = built
    partial = tmp_path / data.cache_path.name
    partial.mkdir()
    for f in ("train_x.npy", "train_labels.npy"):  # a build killed before the manifest
        shutil.copy(data.cache_path / f, partial / f)
    calls = []

    def fake_build(root_, out_dir, resolution, key):
        calls.append(Path(out_dir))
        for f in ("test_x.npy", "test_labels.npy", "manifest.json"):
            shutil.copy(data.cache_path / f, Path(out_dir) / f)
        return json.loads((data.cache_path / "manifest.json").read_text())

    monkeypatch.setattr(sprites, "build", fake_build)
    again = Sprites(Sprites.Config(root=str(root), resolution=32), _ctx(tmp_path))
    assert calls == [partial], "a cache folder without manifest.json must be rebuilt"
    assert len(again.split("test")) == 2664


def test_cache_key_follows_resolution_and_layer_content(built, root, tmp_path, monkeypatch):
    data, cache = built

    class Built(Exception):
        pass

    def record_build(root_, out_dir, resolution, key):
        raise Built(Path(out_dir))

    monkeypatch.setattr(sprites, "build", record_build)
    with pytest.raises(Built) as info:
        Sprites(Sprites.Config(root=str(root), resolution=64), _ctx(cache))
    assert info.value.args[0].parent == cache and info.value.args[0] != data.cache_path

    changed = _linked_root(root, tmp_path / "data")
    sheet = np.array(Image.open(root / "hair/2.png").convert("RGBA"))
    sheet[0, 0] = (1, 2, 3, 255)
    (changed / "hair/2.png").unlink()
    Image.fromarray(sheet).save(changed / "hair/2.png")
    with pytest.raises(Built) as info:
        Sprites(Sprites.Config(root=str(changed), resolution=32), _ctx(cache))
    assert info.value.args[0] != data.cache_path

    same = Sprites(Sprites.Config(root=str(_linked_root(root, tmp_path / "moved")), resolution=32), _ctx(cache))
    assert same.cache_path == data.cache_path, "moving the data folder must not rebuild"


def test_split_pickles_without_the_array(built):
    split = built[0].split("train")
    _ = split[0]
    blob = pickle.dumps(split)
    assert len(blob) < 10_000, "the memory-mapped array must not be pickled into workers"
    clone = pickle.loads(blob)
    assert torch.equal(clone[5]["x"], split[5]["x"]) and clone[5]["labels"] == split[5]["labels"]
    with pytest.raises(IndexError):
        split[9000]


def test_a_fresh_split_opens_safely_from_many_threads(built, monkeypatch):
    """Flow-grid labels read a fresh split from a thread pool: no thread may see it half open."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from disentangle_plugins.video import sprites as mod

    real_load = np.load

    def slow_load(*args, **kwargs):
        if "mmap_mode" not in kwargs:  # the labels: slow, so that the race window is wide
            time.sleep(0.05)
        return real_load(*args, **kwargs)

    def read(i):
        time.sleep(0.005 * i)
        return fresh[i]

    monkeypatch.setattr(mod.np, "load", slow_load)
    fresh = pickle.loads(pickle.dumps(built[0].split("train")))  # not opened yet
    with ThreadPoolExecutor(8) as pool:
        items = list(pool.map(read, range(16)))
    assert [it["labels"] for it in items] == [built[0].split("train")[i]["labels"] for i in range(16)]


def test_stored_arrays_decode_to_the_items(built):
    """The GPU-resident path (stored_x + decode) gives exactly the items of the host path."""
    split = built[0].split("test")
    x = split.decode(stored_tensor(split.stored_x()[:4]))
    assert torch.equal(x, torch.stack([split[i]["x"] for i in range(4)]))
    labels = split.stored_labels()
    assert {k: int(v[3]) for k, v in labels.items()} == split[3]["labels"]


def _cache_copy(data, tmp_path: Path, damaged: str) -> Path:
    """A copy of the built cache (big files linked) with ``damaged`` copied so it can be changed."""
    copy = tmp_path / data.cache_path.name
    copy.mkdir()
    for f in data.cache_path.iterdir():
        if f.name == damaged or f.suffix == ".json":
            shutil.copy(f, copy / f.name)
        else:
            (copy / f.name).symlink_to(f)
    return copy / damaged


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated"),
    (lambda p: p.write_bytes(p.read_bytes()[:128] + bytes(len(p.read_bytes()) - 128)), "differs from what was written"),
])
def test_a_damaged_cache_file_is_named_and_rebuilt(built, root, tmp_path, monkeypatch, capsys, damage, reason):
    data, cache = built
    damage(_cache_copy(data, tmp_path, "test_labels.npy"))
    calls = []

    def fake_build(root_, out_dir, resolution, key):
        calls.append(Path(out_dir))
        return json.loads((data.cache_path / "manifest.json").read_text())

    monkeypatch.setattr(sprites, "build", fake_build)
    Sprites(Sprites.Config(root=str(root), resolution=32), _ctx(tmp_path))
    assert calls == [tmp_path / data.cache_path.name]
    said = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / data.cache_path.name / 'test_labels.npy'} {reason}" in said.replace("( ", "(") \
        or reason in said and "test_labels.npy" in said


def test_a_damaged_split_file_is_an_error_also_when_a_cache_exists(built, root, tmp_path):
    data, cache = built
    linked = _linked_root(root, tmp_path / "root")
    (linked / "split_seed423.json").unlink()
    (linked / "split_seed423.json").write_text("{not json")
    with pytest.raises(disentangle.DisentangleError, match="split file"):
        Sprites(Sprites.Config(root=str(linked), resolution=32), _ctx(cache))
