"""``mug``: a reader for your copy of the MUG Facial Expression Database (Aifanti et al. 2010; licensed,
never shipped), prepared as in MoCoGAN and S3VAE (Zhu et al. 2020, Sec. 4).

**Layout** (that of the public release; ``root`` may also be its parent holding ``subjects3/``)::

    root/<subject>/<expression>/<take>/<frame images>     e.g. 001/happiness/take000/img_0000.jpg

Only the six basic expressions are read: anger, disgust, fear, happiness, sadness, surprise (other
folders such as ``neutral`` are ignored). Each take folder is one video.

**Preprocessing.** From each video one clip of ``seq_len`` (15) frames is sampled, ``frame_step``
frames apart, at a start drawn uniformly by ``seed`` (MoCoGAN samples a random clip per video). The
clip is cut to a square around the face and resized to ``resolution`` (64):

- ``crop = "face"``: the face box found by MediaPipe's face detector (the ``[faces]`` extra; its model
  ships inside the wheel) on the clip's first frame, enlarged by ``margin`` and made square; a clip
  where no face is found falls back to the centre crop (counted in ``manifest.json`` and printed);
- ``crop = "center"``: the centred square of ``center_fraction`` of the short side (MUG's faces are
  near the frame centre; 0.6 of the 896-px frames holds the head).

(OpenCV's Haar cascades would be the lighter detector, but ``opencv-python-headless`` 5 ships none.)

**Labels.** ``expression`` (6 classes, in the order above) is dynamic; ``subject`` (index among the
sorted subject folders) is static. **Split:** 75/25 by video, a permutation by ``seed``.

Built once into ``<cache_dir>/mug-<key>/`` (key: config and the listing of the take folders).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import attrs
import numpy as np
from rich.console import Console

import disentangle
from disentangle_plugins.video import clips as clip_store
from disentangle_plugins.video import common, reading

#: Bump when the preprocessing or the cache layout changes.
BUILD_VERSION = 1
EXPRESSIONS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")
_SPLITS = ("train", "test")
_LAYOUT = ("data.root must be the MUG folder of subject folders (or its parent holding subjects3/), laid out as "
           "<root>/<subject>/<expression>/<take>/<frames>, e.g. 001/happiness/take000/img_0000.jpg, with "
           f"expressions among {', '.join(EXPRESSIONS)}")


@attrs.frozen(kw_only=True)
class MUGConfig:
    """Recipe parameters of ``mug``."""

    root: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    """Your MUG copy: the folder of subject folders, or its parent holding subjects3/."""
    seq_len: int = attrs.field(default=15, validator=disentangle.validators.int_in_range(2, 200))
    """Frames per clip (15 in S3VAE)."""
    frame_step: int = attrs.field(default=1, validator=disentangle.validators.positive_int)
    """Frames between two sampled frames."""
    resolution: int = attrs.field(default=64, validator=disentangle.validators.int_in_range(8, 512))
    """Side of the resized face crop."""
    crop: Literal["face", "center"] = attrs.field(default="face", validator=disentangle.validators.one_of("face", "center"))
    """Square around the detected face (MediaPipe, the [faces] extra) or the centred square."""
    margin: float = attrs.field(default=1.4, validator=attrs.validators.and_(
        attrs.validators.instance_of((int, float)), attrs.validators.ge(1.0)))
    """Face crop side = margin x the larger side of the detected face box."""
    center_fraction: float = attrs.field(default=0.6, validator=attrs.validators.and_(
        attrs.validators.instance_of((int, float)), attrs.validators.gt(0.0), attrs.validators.le(1.0)))
    """Centre crop side as a fraction of the frame's short side (crop = "center" and the fallback)."""
    test_fraction: float = attrs.field(default=0.25, validator=attrs.validators.and_(
        attrs.validators.instance_of((int, float)), attrs.validators.gt(0.0), attrs.validators.lt(1.0)))
    """Share of the videos in the test split (25 % in S3VAE)."""
    seed: int = attrs.field(default=0, validator=disentangle.validators.int_in_range(0))
    """Seed of the clip starts and of the split."""


def resolve_root(root: str) -> Path:
    if not root:
        raise disentangle.DisentangleError("mug: data.root is not set", hint=_LAYOUT)
    path = Path(root).expanduser()
    if not path.is_dir():
        raise disentangle.DisentangleError(f"mug: data.root {path} does not exist or is not a folder", hint=_LAYOUT)
    return path / "subjects3" if (path / "subjects3").is_dir() else path


def find_takes(root: Path) -> list[tuple[str, int, Path]]:
    """``(subject, expression index, take folder)`` of every take of the six expressions, sorted."""
    takes = []
    for subject in sorted(p for p in root.iterdir() if p.is_dir()):
        for e, expression in enumerate(EXPRESSIONS):
            folder = subject / expression
            if folder.is_dir():
                takes += [(subject.name, e, take) for take in sorted(p for p in folder.iterdir() if p.is_dir())]
    if not takes:
        found = sorted(p.name for p in root.iterdir())[:8]
        raise disentangle.DisentangleError(
            f"mug: found no <subject>/<expression>/<take> folders under {root} (it holds: {', '.join(found) or 'nothing'})",
            hint=_LAYOUT)
    return takes


def center_box(frame: np.ndarray, fraction: float) -> tuple[int, int, int]:
    h, w = frame.shape[:2]
    side = max(1, int(round(min(h, w) * fraction)))
    return (h - side) // 2, (w - side) // 2, side


class FaceBoxes:
    """Square face boxes from MediaPipe's face detector (full-range model), or None when no face."""

    def __init__(self, margin: float):
        disentangle.require("mediapipe", extra="faces", purpose="the mug face crop (crop = \"face\")")
        from mediapipe.python.solutions import face_detection

        self.margin = margin
        self._detector = face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)

    def __call__(self, frame: np.ndarray) -> tuple[int, int, int] | None:
        result = self._detector.process(np.ascontiguousarray(frame))
        if not result.detections:
            return None
        h, w = frame.shape[:2]
        best = max(result.detections, key=lambda d: d.score[0])
        box = best.location_data.relative_bounding_box
        cx, cy = (box.xmin + box.width / 2) * w, (box.ymin + box.height / 2) * h
        side = int(round(max(box.width * w, box.height * h) * self.margin))
        side = max(8, min(side, min(h, w)))
        top = int(round(min(max(cy - side / 2, 0), h - side)))
        left = int(round(min(max(cx - side / 2, 0), w - side)))
        return top, left, side

    def close(self) -> None:
        self._detector.close()


class MUG(common.VideoData):
    """MUG facial expressions (see the module docstring)."""

    name = "mug"

    Config = MUGConfig

    def __init__(self, config: MUGConfig, ctx: disentangle.BuildContext):
        self.config = config
        root = resolve_root(config.root)
        takes = find_takes(root)
        self.subjects = sorted({s for s, _, _ in takes})
        listing = [(s, e, t.name, len(reading.frame_files(t))) for s, e, t in takes]
        self.key = disentangle.fingerprint("mug", BUILD_VERSION, attrs.asdict(config, filter=lambda a, v: a.name != "root"),
                                           listing)
        self.cache_path = Path(ctx.cache_dir) / f"mug-{self.key}"
        if not (self.cache_path / "manifest.json").is_file():
            self._build(root, takes)
        self.manifest = json.loads((self.cache_path / "manifest.json").read_text())
        r = config.resolution
        self.spec = disentangle.DataSpec(feature_shape=(3, r, r), seq_len=config.seq_len,
                                         static_factors={"subject": len(self.subjects)},
                                         dynamic_factors={"expression": len(EXPRESSIONS)})
        self._splits = {name: clip_store.ClipSplit(self.cache_path, name) for name in _SPLITS}

    def _build(self, root: Path, takes: list[tuple[str, int, Path]]) -> None:
        c = self.config
        rng = np.random.default_rng([c.seed, 0])
        faces = FaceBoxes(c.margin) if c.crop == "face" else None
        span = (c.seq_len - 1) * c.frame_step + 1
        clips, kept, skipped, no_face = [], [], [], 0
        try:
            for subject, expression, take in disentangle.track(takes, total=len(takes), description="mug: reading takes"):
                files = reading.frame_files(take)
                if len(files) < span:
                    skipped.append(take.relative_to(root).as_posix())
                    continue
                start = int(rng.integers(len(files) - span + 1))
                frames = [reading.read_image(files[start + t * c.frame_step]) for t in range(c.seq_len)]
                box = faces(frames[0]) if faces is not None else None
                if box is None:
                    no_face += faces is not None
                    box = center_box(frames[0], c.center_fraction)
                clips.append(np.stack([reading.crop_resize(f, box, c.resolution) for f in frames]))
                kept.append((subject, expression, take.relative_to(root).as_posix(), start))
        finally:
            if faces is not None:
                faces.close()
        if len(clips) < 2:
            raise disentangle.DisentangleError(
                f"mug: only {len(clips)} takes under {root} have {span} frames (seq_len {c.seq_len}, frame_step {c.frame_step})",
                hint="check data.root (" + _LAYOUT + "), or lower data.seq_len")
        perm = np.random.default_rng([c.seed, 1]).permutation(len(clips))
        n_test = min(max(1, int(round(c.test_fraction * len(clips)))), len(clips) - 1)
        parts = {"test": np.sort(perm[:n_test]), "train": np.sort(perm[n_test:])}
        out = self.cache_path
        out.mkdir(parents=True, exist_ok=True)
        for name in _SPLITS:
            idx = parts[name]
            labels = {"expression": [kept[i][1] for i in idx], "subject": [self.subjects.index(kept[i][0]) for i in idx]}
            meta = {"source": [kept[i][2] for i in idx], "start": [kept[i][3] for i in idx]}
            clip_store.save_split(out, name, np.stack([clips[i] for i in idx]), labels, meta)
        manifest = {"key": self.key, "videos": len(takes), "clips": {k: int(len(v)) for k, v in parts.items()},
                    "skipped_short_takes": skipped, "no_face_center_crop": no_face, "subjects": self.subjects}
        with disentangle.atomic_path(out / "manifest.json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        note = f"; {no_face} without a detected face (centre crop)" if no_face else ""
        note += f"; skipped {len(skipped)} takes shorter than {span} frames" if skipped else ""
        Console(stderr=True).print(f"mug: {len(parts['train'])} train / {len(parts['test'])} test clips{note}")

    @property
    def fingerprint(self) -> str:
        return self.key


@disentangle.hookimpl
def register_datasets(register):
    register("mug", MUG)
