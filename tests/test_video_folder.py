"""``video-folder``: clips from video files (written here with cv2.VideoWriter, MJPG/avi) and frame folders."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import reading
from disentangle_plugins.video.video_folder import VideoFolder, VideoFolderConfig, clip_starts


def frame(t: int, color: tuple[int, int, int], h: int = 48, w: int = 64) -> np.ndarray:
    """RGB frame: a white 8x8 square at column 10 + 3 t on a coloured background."""
    f = np.zeros((h, w, 3), np.uint8)
    f[:] = color
    f[20:28, 10 + 3 * t: 18 + 3 * t] = 255
    return f


def write_avi(path: Path, n: int, color) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert out.isOpened()
    for t in range(n):
        out.write(cv2.cvtColor(frame(t, color), cv2.COLOR_RGB2BGR))
    out.release()


def write_frames(folder: Path, n: int, color) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):  # names that sort wrongly as text: 2 < 10 only in natural order
        cv2.imwrite(str(folder / f"frame{t}.png"), cv2.cvtColor(frame(t, color), cv2.COLOR_RGB2BGR))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "videos"
    write_avi(root / "red" / "a.avi", 12, (200, 0, 0))
    write_avi(root / "red" / "b.avi", 3, (200, 0, 0))  # shorter than a clip: skipped
    write_frames(root / "blue" / "c", 12, (0, 0, 200))
    write_frames(root / "blue" / "d", 9, (0, 0, 200))
    return root


def _ctx(tmp_path):
    return disentangle.BuildContext(cache_dir=tmp_path / "cache")


def test_clips_labels_and_meta(tree, tmp_path):
    cfg = VideoFolderConfig(root=str(tree), seq_len=4, stride=4, resolution=16, labels=True, test_fraction=0.34)
    data = VideoFolder(cfg, _ctx(tmp_path))
    testing.check_dataset(data)
    assert data.classes == ["blue", "red"] and data.spec.static_factors == {"class": 2}
    train, test = data.split("train"), data.split("test")
    # a: 3 clips, c: 3 clips, d: 2 clips, b: none; one of the three videos is held out whole
    assert len(train) + len(test) == 8 and len(test) in (2, 3)
    assert data.manifest["skipped_short_videos"] == ["red/b.avi"]
    sources = {s for split in (train, test) for s in split.stored_meta()["source"]}
    assert sources == {"red/a.avi", "blue/c", "blue/d"}
    assert not set(train.stored_meta()["source"]) & set(test.stored_meta()["source"])
    item = train[0]
    assert item["x"].shape == (4, 3, 16, 16) and item["x"].dtype == torch.float32
    assert set(item["meta"]) == {"source", "start"}
    for split in (train, test):
        for i in range(len(split)):
            it = split[i]
            cls = data.classes[it["labels"]["class"]]
            assert it["meta"]["source"].startswith(cls)
            # colour follows the class: red background for red, blue for blue (frame corner pixel)
            corner = it["x"][0, :, 0, 0]
            assert (corner[0] > corner[2]) == (cls == "red")


def test_frame_order_and_motion(tmp_path):
    """Frames keep their natural order (frame2 before frame10) and clips start every `stride` frames."""
    root = tmp_path / "v"
    write_frames(root / "one", 12, (0, 0, 0))
    cfg = VideoFolderConfig(root=str(root), seq_len=3, stride=2, resolution=16, test_fraction=0.0, split_by="clip",
                            frame_step=2)
    data = VideoFolder(cfg, _ctx(tmp_path))
    train = data.split("train")
    assert train.stored_meta()["start"] == [0, 4]  # 6 kept frames (0, 2, .., 10); clips start at kept 0 and 2
    x = np.asarray(train.stored_x()[0])  # (3, 16, 16, 3); the white square moves right
    cols = [np.nonzero(x[t, :, :, 0].max(0) > 128)[0].mean() for t in range(3)]
    assert cols[0] < cols[1] < cols[2]


def test_clip_starts():
    assert clip_starts(10, 4, 4, None) == [0, 4]
    assert clip_starts(10, 4, 2, 2) == [0, 2]
    assert clip_starts(3, 4, 1, None) == []


def test_cache_is_reused_and_changes_with_files(tree, tmp_path):
    cfg = VideoFolderConfig(root=str(tree), seq_len=4, resolution=16)
    a = VideoFolder(cfg, _ctx(tmp_path))
    b = VideoFolder(cfg, _ctx(tmp_path))
    assert a.fingerprint == b.fingerprint
    write_avi(tree / "red" / "e.avi", 8, (200, 0, 0))
    assert VideoFolder(cfg, _ctx(tmp_path)).fingerprint != a.fingerprint


def test_clear_errors(tmp_path):
    with pytest.raises(disentangle.DisentangleError, match="not set"):
        VideoFolder(VideoFolderConfig(), _ctx(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(disentangle.DisentangleError, match="no video files") as err:
        VideoFolder(VideoFolderConfig(root=str(tmp_path / "empty")), _ctx(tmp_path))
    assert "root/<class>/a.mp4" in err.value.hint
    write_avi(tmp_path / "loose" / "a.avi", 10, (0, 0, 0))
    with pytest.raises(disentangle.DisentangleError, match="class sub-folder"):
        VideoFolder(VideoFolderConfig(root=str(tmp_path / "loose"), labels=True), _ctx(tmp_path))
    with pytest.raises(disentangle.DisentangleError, match="only one video"):
        VideoFolder(VideoFolderConfig(root=str(tmp_path / "loose"), seq_len=4), _ctx(tmp_path))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.mp4").write_bytes(b"not a video")
    with pytest.raises(disentangle.DisentangleError, match="x.mp4"):
        VideoFolder(VideoFolderConfig(root=str(tmp_path / "bad")), _ctx(tmp_path))


def test_natural_order():
    names = [Path(f"f{i}.png") for i in (10, 2, 1)]
    assert [p.name for p in sorted(names, key=reading.natural_key)] == ["f1.png", "f2.png", "f10.png"]


@pytest.mark.slow
def test_recipe_trains_on_a_folder(tree, tmp_path):
    """The README's worked example: recipes/video-folder.toml on a folder of videos, a few CPU steps."""
    from typer.testing import CliRunner

    from disentangle.cli import app

    root = Path(__file__).resolve().parents[1]
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "run", str(root / "recipes" / "video-folder.toml"), "--run-dir", str(run_dir),
        "--set", f"data.root={tree}", "--set", "data.labels=true", "--set", "data.seq_len=4",
        "--set", "data.resolution=32", "--set", "model.encoder.channels=[4,4,4]", "--set", "model.decoder.channels=[4,4,4]",
        "--set", "model.encoder.out_dim=8", "--set", "train.max_steps=2", "--set", "train.batch_size=2",
        "--set", "eval.images=false"])
    assert result.exit_code == 0, result.output
    assert (run_dir / "checkpoints" / "last.pt").exists()
