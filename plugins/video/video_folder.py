"""``video-folder``: your own videos. A folder of video files (anything OpenCV reads: .mp4, .avi, ...)
and/or of frame folders (a folder of images is one video, frames in natural name order), cut into
clips of ``seq_len`` frames.

- Each frame is cut to its centred square and resized to ``resolution`` x ``resolution`` RGB.
- ``frame_step`` keeps every k-th frame; a clip starts every ``stride`` kept frames (``stride =
  seq_len``: back-to-back clips; smaller: overlapping ones). Videos shorter than one clip are skipped
  (and counted in the build message).
- ``labels = true``: the first-level sub-folder of a video is its class (label ``class``, classes in
  sorted name order), e.g. ``root/walking/a.mp4``, ``root/waving/b/0001.png ...``.
- The split is by video (no video gives clips to both splits): ``test_fraction`` of the videos,
  chosen by ``seed``; ``split_by = "clip"`` splits the clips instead (for a single long video).
- Items carry ``meta`` ``{"source": path relative to root, "start": first frame index}``.

The clips are built once into ``<cache_dir>/video-folder-<key>/`` (key: the config and every file's
path, size and modification time) as uint8 ``(N, T, R, R, 3)`` arrays, memory-mapped after that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import attrs
import numpy as np
from rich.console import Console

import disentangle
from disentangle_plugins.video import clips as clip_store
from disentangle_plugins.video import common, reading

#: Bump when the clip cutting or the cache layout changes.
BUILD_VERSION = 1
_SPLITS = ("train", "test")


@attrs.frozen(kw_only=True)
class VideoFolderConfig:
    """Recipe parameters of ``video-folder``."""

    root: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    """Folder of video files and/or frame folders (searched recursively)."""
    seq_len: int = attrs.field(default=8, validator=disentangle.validators.int_in_range(2, 1000))
    """Frames per clip (T)."""
    stride: int = attrs.field(default=8, validator=disentangle.validators.positive_int)
    """Kept frames between the starts of two clips of a video."""
    frame_step: int = attrs.field(default=1, validator=disentangle.validators.positive_int)
    """Keep every k-th frame of a video (temporal subsampling)."""
    resolution: int = attrs.field(default=64, validator=disentangle.validators.int_in_range(8, 512))
    """Frame side after the centre-square crop and resize."""
    labels: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    """Use each video's first-level sub-folder name as its class label ``class``."""
    test_fraction: float = attrs.field(default=0.2, validator=attrs.validators.and_(
        attrs.validators.instance_of((int, float)), attrs.validators.ge(0.0), attrs.validators.lt(1.0)))
    """Share of the videos (or clips, see split_by) held out for the test split."""
    split_by: Literal["video", "clip"] = attrs.field(default="video",
                                                     validator=disentangle.validators.one_of("video", "clip"))
    """Split whole videos (no leak between splits) or single clips."""
    max_clips_per_video: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(disentangle.validators.positive_int))
    """Keep at most this many clips of each video (the first ones); unset keeps all."""
    seed: int = attrs.field(default=0, validator=disentangle.validators.int_in_range(0))
    """Seed of the split."""


_LAYOUT = ("data.root must hold video files (.mp4, .avi, ...) or folders of frame images, e.g. "
           "root/a.mp4, root/b/0001.png 0002.png ...; with labels = true one sub-folder per class: "
           "root/<class>/a.mp4, root/<class>/b/0001.png ...")


def find_sources(root: Path) -> list[Path]:
    """Video files and frame folders under ``root``, sorted by relative path."""
    sources = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        names = sorted(filenames)
        sources += [here / f for f in names if Path(f).suffix.lower() in reading.VIDEO_SUFFIXES]
        if any(Path(f).suffix.lower() in reading.IMAGE_SUFFIXES for f in names):
            sources.append(here)
    return sorted(sources, key=lambda p: p.relative_to(root).as_posix())


def read_source(source: Path) -> np.ndarray:
    """All frames of a video file or a frame folder, uint8 RGB ``(T, H, W, 3)``."""
    if source.is_dir():
        return np.stack([reading.read_image(p) for p in reading.frame_files(source)])
    return reading.read_video(source)


def clip_starts(n_frames: int, seq_len: int, stride: int, limit: int | None) -> list[int]:
    """Start indices (in kept frames) of the clips of a video with ``n_frames`` kept frames."""
    starts = list(range(0, n_frames - seq_len + 1, stride))
    return starts[:limit] if limit is not None else starts


class VideoFolder(common.VideoData):
    """Clips of the videos in a folder (see the module docstring)."""

    name = "video-folder"

    Config = VideoFolderConfig

    def __init__(self, config: VideoFolderConfig, ctx: disentangle.BuildContext):
        self.config = config
        if not config.root:
            raise disentangle.DisentangleError("video-folder: data.root is not set", hint=_LAYOUT)
        root = Path(config.root).expanduser()
        if not root.is_dir():
            raise disentangle.DisentangleError(f"video-folder: data.root {root} does not exist or is not a folder",
                                               hint=_LAYOUT)
        sources = find_sources(root)
        if not sources:
            raise disentangle.DisentangleError(f"video-folder: found no video files or frame folders under {root}",
                                               hint=_LAYOUT)
        rel = [s.relative_to(root).as_posix() for s in sources]
        if config.labels:
            loose = [r for r, s in zip(rel, sources) if len(Path(r).parts) < 2 or s == root]
            if loose:
                raise disentangle.DisentangleError(
                    f"video-folder: labels = true but {loose[0]!r} is not inside a class sub-folder of {root}",
                    hint=_LAYOUT + "; or set data.labels = false")
            self.classes = sorted({Path(r).parts[0] for r in rel})
        else:
            self.classes = []
        stamps = [(r, *_stamp(s)) for r, s in zip(rel, sources)]
        self.key = disentangle.fingerprint("video-folder", BUILD_VERSION, attrs.asdict(config, filter=lambda a, v: a.name != "root"), stamps)
        self.cache_path = Path(ctx.cache_dir) / f"video-folder-{self.key}"
        if not (self.cache_path / "manifest.json").is_file():
            self._build(root, sources, rel)
        self.manifest = json.loads((self.cache_path / "manifest.json").read_text())
        r = config.resolution
        self.spec = disentangle.DataSpec(feature_shape=(3, r, r), seq_len=config.seq_len,
                                         static_factors={"class": len(self.classes)} if config.labels else {})
        self._splits = {name: clip_store.ClipSplit(self.cache_path, name) for name in _SPLITS}

    def _build(self, root: Path, sources: list[Path], rel: list[str]) -> None:
        c = self.config
        clips: list[tuple[int, int, np.ndarray]] = []  # (source index, start frame, frames)
        skipped = []
        for i, source in enumerate(disentangle.track(sources, total=len(sources), description="video-folder: reading")):
            frames = read_source(source)[:: c.frame_step]
            box = reading.center_square(frames[0])
            starts = clip_starts(len(frames), c.seq_len, c.stride, c.max_clips_per_video)
            if not starts:
                skipped.append(rel[i])
                continue
            small = {}
            for s in starts:
                for t in range(s, s + c.seq_len):
                    if t not in small:
                        small[t] = reading.crop_resize(frames[t], box, c.resolution)
                clips.append((i, s * c.frame_step, np.stack([small[t] for t in range(s, s + c.seq_len)])))
        if not clips:
            raise disentangle.DisentangleError(
                f"video-folder: no video under {root} has {c.seq_len} frames (after frame_step = {c.frame_step})",
                hint="lower data.seq_len or data.frame_step")
        rng = np.random.default_rng(c.seed)
        units = sorted({i for i, _, _ in clips}) if c.split_by == "video" else list(range(len(clips)))
        if c.test_fraction > 0 and len(units) < 2:
            raise disentangle.DisentangleError(
                f"video-folder: only one {c.split_by} to split into train and test",
                hint='add videos, set data.split_by = "clip", or data.test_fraction = 0')
        n_test = int(round(c.test_fraction * len(units)))
        n_test = min(max(n_test, 1 if c.test_fraction > 0 else 0), len(units) - 1)
        test_units = set(np.asarray(units)[rng.permutation(len(units))[:n_test]].tolist())
        out = self.cache_path
        out.mkdir(parents=True, exist_ok=True)
        counts = {}
        for name in _SPLITS:
            keep = [k for k, (i, _, _) in enumerate(clips)
                    if ((i if c.split_by == "video" else k) in test_units) == (name == "test")]
            x = np.stack([clips[k][2] for k in keep]) if keep else np.zeros((0, c.seq_len, c.resolution, c.resolution, 3), np.uint8)
            meta = {"source": [rel[clips[k][0]] for k in keep], "start": [clips[k][1] for k in keep]}
            labels = {"class": [self.classes.index(Path(rel[clips[k][0]]).parts[0]) for k in keep]} if c.labels else {}
            clip_store.save_split(out, name, x, labels, meta)
            counts[name] = len(keep)
        manifest = {"key": self.key, "classes": self.classes, "clips": counts, "videos": len(sources),
                    "skipped_short_videos": skipped}
        with disentangle.atomic_path(out / "manifest.json") as tmp:
            tmp.write_text(json.dumps(manifest, indent=2) + "\n")
        note = f"; skipped {len(skipped)} videos shorter than one clip" if skipped else ""
        Console(stderr=True).print(f"video-folder: {len(sources)} videos -> {counts['train']} train / "
                                   f"{counts['test']} test clips{note}")

    @property
    def fingerprint(self) -> str:
        return self.key


def _stamp(path: Path) -> tuple[int, int]:
    """(size, mtime) of a video file, or of the newest file in a frame folder (summed sizes)."""
    if path.is_dir():
        files = reading.frame_files(path)
        return sum(f.stat().st_size for f in files), max(int(f.stat().st_mtime) for f in files)
    st = path.stat()
    return st.st_size, int(st.st_mtime)


@disentangle.hookimpl
def register_datasets(register):
    register("video-folder", VideoFolder)
