"""What the video datasets share: uint8 frames on disk or in memory, float ``(T, C, H, W)`` items,
``[0, 1]`` images for pictures and uint8 ``(B, T, H, W, C)`` for ``disentangle sample``.

Splits keep their frames as uint8 (4x smaller than float32, memory-mappable); an item is converted
on access with :func:`frames_to_float`. ``scale`` maps pixel values to the data space:
``x = uint8 / scale`` (255 gives [0, 1]); :func:`export` is its inverse.
"""

from __future__ import annotations

import numpy as np
import torch

import disentangle

__all__ = ["VideoData", "export", "frames_to_float", "to_images"]


def frames_to_float(frames: np.ndarray, scale: float = 255.0, channels_last: bool = True) -> torch.Tensor:
    """uint8 frames ``(T, H, W, C)`` (``channels_last``) or ``(T, C, H, W)`` -> float32 ``(T, C, H, W)``
    equal to ``frames / scale`` (correctly rounded float32 division)."""
    a = np.asarray(frames)
    if a.ndim != 4:
        raise ValueError(f"frames must have 4 dimensions (T, H, W, C) or (T, C, H, W), got shape {a.shape}")
    if channels_last:
        a = a.transpose(0, 3, 1, 2)
    # numpy, not torch: no intra-op thread pool to wake up for one small item (DataLoader workers)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / np.float32(scale))


def to_images(x: torch.Tensor) -> torch.Tensor:
    """Data-space video ``(B, T, C, H, W)`` -> images in [0, 1] (``SequenceData.to_images``)."""
    return x.clamp(0.0, 1.0)


def export(x: torch.Tensor, scale: float = 255.0) -> np.ndarray:
    """Data-space video ``(B, T, C, H, W)`` -> uint8 ``(B, T, H, W, C)``: ``round(clamp(x, 0, 1) * scale)``,
    the inverse of :func:`frames_to_float` (``SequenceData.export``)."""
    x = x.detach().cpu().float().clamp(0.0, 1.0)
    return (x * scale).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2).contiguous().numpy()


class VideoData(disentangle.SequenceData):
    """What the uint8 video datasets share: splits by name in ``self._splits`` (an unknown name is a
    message listing the others), pictures and ``export`` of ``(B, T, C, H, W)`` data in [0, 1]. A
    subclass sets ``name`` (its recipe name, for messages) and fills ``_splits``."""

    name: str = "video"
    _splits: dict

    def split(self, name: str):
        if name not in self._splits:
            raise disentangle.DisentangleError(
                f"{self.name} has no split '{name}'; available: {', '.join(self._splits)}")
        return self._splits[name]

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        return to_images(x)

    def export(self, x: torch.Tensor) -> np.ndarray:
        """uint8 ``(B, T, H, W, C)``."""
        return export(x)
