"""``landmark``: the paper's face signal for L_DFP (Zhu et al. 2020, Sec. 3.3, Fig. 3b). Per frame three
distances, each divided by the face size: left eyelids (upper to lower), right eyelids, lips (upper to
lower, inner contour); a head ``z_t -> hidden -> ReLU -> 3`` regresses them from ``z_t`` (mean squared
error): a :class:`disentangle.PseudoLabelTask` with ``loss_kind = "regression"``.

**Detectors** (``detector``):

- ``"mediapipe"``: MediaPipe face mesh (468 points; the ``[faces]`` extra plus ``mediapipe==0.10.21``
  installed with ``--no-deps``; its model ships in the wheel, nothing downloads). Eyelids: points
  159/145 (left) and 386/374 (right); lips: 13/14. Frames are upscaled to ``detect_size`` before
  detection (the mesh wants faces of about 192 px; dataset frames are often 64 px).
- ``"precomputed"``: a ``.npy`` file ``path`` with one entry per train sequence and frame, in split
  order: either the three distances ``(N, T, 3)``, or landmarks ``(N, T, 68, 2)`` in the iBUG-68
  layout (dlib, SAN, FAN: eyelids 37/41 and 38/40, 43/47 and 44/46; lips 62/66) or ``(N, T, 468|478, 2|3)``
  MediaPipe meshes. NaN marks a frame without a face.

**Face size** is ``sqrt(w * h)`` of the box around all the frame's landmarks (so the two landmark
layouts give distances on slightly different scales; do not mix them). A frame where no face is found
is NaN: it adds no loss (the base class masks it); the count is printed and kept in
``missing_frames``. With ``standardize = true`` (default) each distance is shifted and scaled to zero
mean and unit variance over the labelled train frames before the loss (the cache keeps raw values).

Labels are cached as float32 ``(N, T, 3)`` in ``<cache_dir>/landmark/``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from rich.console import Console

import disentangle

DISTANCES = ("left_eye", "right_eye", "lips")
#: (upper, lower) point pairs of each distance; several pairs are averaged.
MESH_PAIRS = {"left_eye": ((159, 145),), "right_eye": ((386, 374),), "lips": ((13, 14),)}
IBUG68_PAIRS = {"left_eye": ((37, 41), (38, 40)), "right_eye": ((43, 47), (44, 46)), "lips": ((62, 66),)}


@attrs.frozen(kw_only=True)
class LandmarkConfig:
    """Recipe parameters of ``landmark``."""

    detector: Literal["mediapipe", "precomputed"] = attrs.field(
        default="mediapipe", validator=disentangle.validators.one_of("mediapipe", "precomputed"))
    """Where the landmarks come from: MediaPipe face mesh, or a .npy file you have (``path``)."""
    path: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    """The .npy file of detector = "precomputed" (distances (N, T, 3) or landmarks (N, T, P, 2|3))."""
    detect_size: int = attrs.field(default=256, validator=disentangle.validators.int_in_range(64, 2048))
    """Frames are upscaled to this side before MediaPipe looks for a face."""
    standardize: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    """Regress z-scored distances (per distance, over the labelled train frames)."""
    hidden: int = attrs.field(default=64, validator=disentangle.validators.positive_int)
    """Width of the head's hidden layer (two fully connected layers, as in the paper)."""


# ----- distances from landmarks ------------------------------------------------------------------

def distances_from_landmarks(points: np.ndarray) -> np.ndarray:
    """``(..., P, 2|3)`` landmarks (pixels; P = 68 iBUG or 468/478 MediaPipe) -> ``(..., 3)`` distances
    divided by the face size; NaN where the landmarks are NaN."""
    points = np.asarray(points, dtype=np.float64)[..., :2]
    n_points = points.shape[-2]
    if n_points == 68:
        pairs = IBUG68_PAIRS
    elif n_points in (468, 478):
        pairs = MESH_PAIRS
    else:
        raise ValueError(f"landmarks with {n_points} points: expected 68 (iBUG) or 468/478 (MediaPipe mesh)")
    lo, hi = np.min(points, axis=-2), np.max(points, axis=-2)
    size = np.sqrt(np.prod(hi - lo, axis=-1))
    out = []
    for name in DISTANCES:
        d = [np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1) for a, b in pairs[name]]
        out.append(np.mean(d, axis=0) / np.where(size > 0, size, np.nan))
    return np.stack(out, axis=-1).astype(np.float32)


class MeshDetector:
    """MediaPipe face mesh on RGB uint8 frames: ``(468, 2)`` pixel landmarks or None."""

    def __init__(self, detect_size: int = 256):
        disentangle.require("mediapipe", extra="faces", purpose='the landmark task (detector = "mediapipe")')
        from mediapipe.python.solutions import face_mesh

        self.detect_size = detect_size
        self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                                        min_detection_confidence=0.5)

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        import cv2

        h, w = frame.shape[:2]
        scale = max(1.0, self.detect_size / max(h, w))
        if scale > 1:
            frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
        result = self._mesh.process(np.ascontiguousarray(frame))
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h) for p in lm], dtype=np.float64)

    def distances(self, frames: np.ndarray) -> np.ndarray:
        """RGB uint8 ``(T, H, W, 3)`` -> ``(T, 3)`` distances, NaN rows where no face is found."""
        out = np.full((len(frames), len(DISTANCES)), np.nan, dtype=np.float32)
        for t, frame in enumerate(frames):
            points = self(frame)
            if points is not None:
                out[t] = distances_from_landmarks(points)
        return out

    def close(self) -> None:
        self._mesh.close()


def to_rgb_uint8(x: torch.Tensor) -> np.ndarray:
    """Frames ``(T, 3, H, W)`` in [0, 1] -> uint8 RGB ``(T, H, W, 3)``."""
    a = x.detach().cpu().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return a.permute(0, 2, 3, 1).contiguous().numpy()


def load_precomputed(path: str, n: int, t_len: int) -> np.ndarray:
    """The precomputed file as ``(N, T, 3)`` distances."""
    if not path:
        raise disentangle.DisentangleError('landmark: detector = "precomputed" needs `path`',
                                           hint="set path to a .npy of distances (N, T, 3) or landmarks (N, T, P, 2)")
    file = Path(path).expanduser()
    try:
        a = np.load(file)
    except (OSError, ValueError) as exc:
        raise disentangle.DisentangleError(f"landmark: cannot read {file}: {exc}",
                                           hint="give a .npy file written with numpy.save") from exc
    if a.shape[:2] != (n, t_len) or a.ndim not in (3, 4) or (a.ndim == 3 and a.shape[2] != 3):
        raise disentangle.DisentangleError(
            f"landmark: {file} has shape {a.shape}; expected ({n}, {t_len}, 3) distances or ({n}, {t_len}, P, 2) "
            "landmarks (one entry per train sequence and frame, in split order)",
            hint="compute it for the train split of the dataset in this recipe")
    if a.ndim == 3:
        return a.astype(np.float32)
    try:
        return distances_from_landmarks(a)
    except ValueError as exc:
        raise disentangle.DisentangleError(f"landmark: {file}: {exc}") from exc


# ----- the task ----------------------------------------------------------------------------------

class Landmark(disentangle.PseudoLabelTask):
    """Regress eyelid and lip distances from ``z_t`` (see the module docstring)."""

    Config = LandmarkConfig
    name = "landmark"
    loss_kind = "regression"

    def __init__(self, config: LandmarkConfig, ctx: disentangle.BuildContext):
        if ctx.data is not None and config.detector == "mediapipe" and (
                len(ctx.data.feature_shape) != 3 or ctx.data.feature_shape[0] != 3):
            raise disentangle.DisentangleError(
                f"landmark (mediapipe) needs RGB frames (3, H, W); the dataset's frames are {tuple(ctx.data.feature_shape)}",
                hint='use a face video dataset, or detector = "precomputed"')
        super().__init__(config, ctx, width=len(DISTANCES), hidden=config.hidden)
        #: Train frames without a face, after :meth:`prepare`.
        self.missing_frames: int | None = None
        self._stats: tuple[np.ndarray, np.ndarray] | None = None

    def cache_params(self) -> tuple[Any, ...]:
        c = self.config
        if c.detector == "precomputed":
            st = Path(c.path).expanduser().stat() if c.path and Path(c.path).expanduser().exists() else None
            return c.detector, c.path, st and st.st_size, st and int(st.st_mtime)
        return c.detector, c.detect_size

    def compute_labels(self, data: disentangle.SequenceData) -> np.ndarray:
        c = self.config
        n, t_len = len(data.split("train")), data.spec.seq_len
        if c.detector == "precomputed":
            return load_precomputed(c.path, n, t_len)
        detector = MeshDetector(c.detect_size)
        try:  # one MediaPipe graph, so one worker
            return disentangle.label_sequences(data, lambda i, item: detector.distances(to_rgb_uint8(item["x"])),
                                               description="landmark: face mesh", workers=1, dtype=np.float32)
        finally:
            detector.close()

    def make_targets(self, cached: np.ndarray) -> np.ndarray:
        targets = np.asarray(cached, dtype=np.float32)
        if not self.config.standardize:
            return targets
        flat = targets.reshape(-1, targets.shape[-1])
        with warnings.catch_warnings():  # an all-NaN column (no face anywhere) is reported by prepare()
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
        mean = np.nan_to_num(mean)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        self._stats = (mean, std)
        return (targets - mean) / std

    def prepare(self, data: disentangle.SequenceData, ctx: disentangle.BuildContext) -> None:
        super().prepare(data, ctx)
        assert self.labels is not None
        missing = int((~torch.isfinite(self.labels)).any(-1).sum())
        self.missing_frames = missing
        total = self.labels.shape[0] * self.labels.shape[1]
        if missing:
            Console(stderr=True).print(f"landmark: no face in {missing} of {total} train frames (masked: no loss)")
        if missing == total:
            raise disentangle.DisentangleError(
                f"landmark: no face found in any of the {total} train frames", hint=(
                    "check that the dataset shows faces (crop = \"face\" for mug), or use detector = \"precomputed\""))


@disentangle.hookimpl
def register_tasks(register):
    register("landmark", Landmark)
