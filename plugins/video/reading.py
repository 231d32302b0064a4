"""How frames get off the disk: video files (OpenCV) and folders of frame images, as uint8 RGB
``(T, H, W, 3)``, and how a frame is cut to a square and resized."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

import disentangle

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def natural_key(path: Path) -> list[object]:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def frame_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)


def read_video(path: Path) -> np.ndarray:
    """Every frame of a video file as uint8 RGB ``(T, H, W, 3)``."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        if not cap.isOpened():
            raise disentangle.DisentangleError(f"cannot open the video {path} with OpenCV",
                                               hint="convert it to a common codec (e.g. H.264 .mp4 or MJPG .avi), "
                                                    "or extract its frames into a folder of images")
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise disentangle.DisentangleError(f"the video {path} has no readable frames",
                                           hint="check the file (e.g. with ffprobe) or remove it from the folder")
    return np.stack(frames)


def read_image(path: Path) -> np.ndarray:
    """One image file as uint8 RGB ``(H, W, 3)``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise disentangle.DisentangleError(f"cannot read the image {path}", hint="replace or remove the file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def center_square(frame: np.ndarray) -> tuple[int, int, int]:
    """``(top, left, side)`` of the largest centred square of a frame ``(H, W, ...)``."""
    h, w = frame.shape[:2]
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side


def crop_resize(frame: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """Cut the square ``box = (top, left, side)`` (clipped to the frame) and resize it to ``size`` x
    ``size`` (area interpolation when shrinking, bilinear when growing)."""
    top, left, side = box
    h, w = frame.shape[:2]
    top, left = max(0, min(top, h - 1)), max(0, min(left, w - 1))
    patch = frame[top: min(h, top + side), left: min(w, left + side)]
    interp = cv2.INTER_AREA if min(patch.shape[:2]) >= size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)
