"""``flow-grid``: the paper's dynamic-factor-prediction (DFP) auxiliary task for video.

Pseudo-labels come from optical flow (Zhu et al., CVPR 2020, Sec. 3.3): each frame is cut into
a ``grid`` x ``grid`` array of cells, the flow magnitude is averaged per cell, and the
``top_k`` cells with the most motion form the frame's multi-hot label. A small head
(``z_t -> hidden -> ReLU -> grid*grid``) predicts the label from the dynamic code ``z_t``
with a cross-entropy against the target distribution ``multi_hot / top_k``: a
:class:`disentangle.PseudoLabelTask` with ``loss_kind = "cross-entropy"``.

Flow convention: the label of frame ``t >= 1`` uses the flow between frames ``t-1`` and ``t``,
computed on the pixel grid of frame ``t`` (so its cells are where the moving content *is* at
``t``); frame 0 uses the flow between frames 0 and 1, computed on frame 0. A frame without any
motion gets the first ``top_k`` cells (a deterministic tie break).

Labels are computed once per dataset with OpenCV (DIS or Farneback flow on uint8 grayscale
frames; or ``method = "raft"``: torchvision's RAFT with a weights file you give, see
:mod:`disentangle_plugins.video.raft_flow`) and cached as uint8 ``(N, T, grid*grid)`` in
``<cache_dir>/flow-grid/<fingerprint(data.fingerprint, grid, top_k, method)>.npy``.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import attrs
import cv2
import numpy as np
import torch

import disentangle
from disentangle_plugins.video import raft_flow

#: ITU-R BT.601 luma weights (what ``cv2.COLOR_RGB2GRAY`` uses).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _top_k_in_range(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    cells = instance.grid * instance.grid
    if not 1 <= value <= cells:
        raise ValueError(f"'top_k' must be between 1 and grid*grid = {cells}, got {value}")


@attrs.frozen
class FlowGridConfig:
    """Recipe parameters of ``flow-grid``."""

    grid: int = attrs.field(default=4, validator=disentangle.validators.positive_int)
    """Cells per side: labels have ``grid * grid`` classes."""
    top_k: int = attrs.field(default=3, validator=[disentangle.validators.positive_int, _top_k_in_range])
    """Number of highest-motion cells marked in each frame's label (1 <= top_k <= grid*grid)."""
    method: Literal["dis", "farneback", "raft"] = attrs.field(
        default="dis", validator=disentangle.validators.one_of("dis", "farneback", "raft"))
    """Optical-flow algorithm: OpenCV DIS (ultrafast preset) or Farneback, or torchvision's RAFT (needs ``weights``)."""
    weights: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    """method = "raft" only: your RAFT weights file (a torchvision raft_large/raft_small state_dict); nothing downloads."""
    raft_size: Literal["large", "small"] = attrs.field(
        default="large", validator=disentangle.validators.one_of("large", "small"))
    """method = "raft" only: the RAFT variant the weights belong to."""
    hidden: int = attrs.field(default=64, validator=disentangle.validators.positive_int)
    """Width of the prediction head's hidden layer."""


# ----- pseudo-labels -------------------------------------------------------------------------------

def to_gray_uint8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Frames ``(T, C, H, W)`` in [0, 1] with C in (1, 3) -> uint8 grayscale ``(T, H, W)``."""
    a = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
    a = np.clip(a, 0.0, 1.0) * 255.0
    gray = a[:, 0] if a.shape[1] == 1 else np.tensordot(a, _LUMA, axes=([1], [0]))
    return np.ascontiguousarray(np.rint(gray).astype(np.uint8))


def flow_magnitude(frame: np.ndarray, other: np.ndarray, method: str, dis: Any = None) -> np.ndarray:
    """Magnitude ``(H, W)`` of the optical flow from uint8 ``frame`` to ``other`` (on ``frame``'s grid)."""
    if method == "dis":
        dis = dis if dis is not None else cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        flow = dis.calc(frame, other, None)
    elif method == "farneback":
        # OpenCV's usual window (15) blurs the flow of small frames over several cells; scale it
        # with the frame: 9 at 32x32, 15 from 64x64 up.
        winsize = int(np.clip((min(frame.shape) // 4) | 1, 5, 15))
        flow = cv2.calcOpticalFlowFarneback(frame, other, None, pyr_scale=0.5, levels=3, winsize=winsize,
                                            iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
    else:
        raise disentangle.DisentangleError(f"unknown optical-flow method '{method}'",
                                           hint="use method = \"dis\" or \"farneback\"")
    return np.hypot(flow[..., 0], flow[..., 1])


def cell_means(values: np.ndarray, grid: int) -> np.ndarray:
    """Mean of ``values`` ``(H, W)`` over a ``grid`` x ``grid`` array of cells, row-major ``(grid*grid,)``.

    Cell edges are ``linspace(0, H, grid + 1)`` rounded down (cells differ by at most a pixel)."""
    h, w = values.shape
    rows = np.linspace(0, h, grid + 1).astype(int)
    cols = np.linspace(0, w, grid + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(values.astype(np.float64), rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols))
    return (sums / counts).ravel()


def sequence_labels(gray: np.ndarray, grid: int, top_k: int, method: str, dis: Any = None) -> np.ndarray:
    """Multi-hot uint8 labels ``(T, grid*grid)`` of one grayscale sequence ``(T, H, W)``."""
    t_len = gray.shape[0]
    labels = np.zeros((t_len, grid * grid), dtype=np.uint8)
    for t in range(t_len):
        frame, other = (gray[t], gray[t - 1]) if t > 0 else (gray[0], gray[1])
        score = cell_means(flow_magnitude(frame, other, method, dis), grid)
        top = np.argsort(-score, kind="stable")[:top_k]
        labels[t, top] = 1
    return labels


def _check_frames(shape: tuple[int, ...], grid: int, where: str) -> None:
    if len(shape) != 4 or shape[1] not in (1, 3):
        raise disentangle.DisentangleError(
            f"flow-grid needs image sequences (T, C, H, W) with C = 1 or 3; {where} has shape {tuple(shape)}",
            hint="use flow-grid with a video dataset, or pick another task for this modality")
    if shape[0] < 2:
        raise disentangle.DisentangleError(f"flow-grid needs at least 2 frames per sequence; {where} has {shape[0]}")
    if shape[2] < grid or shape[3] < grid:
        raise disentangle.DisentangleError(
            f"flow-grid: frames of {shape[2]}x{shape[3]} pixels are smaller than the {grid}x{grid} grid",
            hint="lower `grid`")


def compute_labels(data: disentangle.SequenceData, grid: int, top_k: int, method: str,
                   workers: int | None = None) -> np.ndarray:
    """Multi-hot uint8 labels ``(N, T, grid*grid)`` for every train sequence, in split order.

    Sequences are processed by ``workers`` threads (default: the CPU count, at most 8); OpenCV
    releases the GIL while it computes flow, and each thread keeps its own DIS instance."""
    local = threading.local()

    def one(i: int, item: dict[str, Any]) -> np.ndarray:
        if method == "dis" and not hasattr(local, "dis"):
            local.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        x = item["x"]
        _check_frames(tuple(x.shape), grid, f"train item {i}")
        return sequence_labels(to_gray_uint8(x), grid, top_k, method, getattr(local, "dis", None))

    return disentangle.label_sequences(data, one, description=f"flow-grid labels ({method})",
                                       workers=workers or 0, dtype=np.uint8)


def compute_raft_labels(data: disentangle.SequenceData, grid: int, top_k: int, weights: str, size: str) -> np.ndarray:
    """Like :func:`compute_labels`, with RAFT flow (one batch of frame pairs per sequence, on the GPU if any)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = raft_flow.load_raft(weights, size, device)

    def one(i: int, item: dict[str, Any]) -> np.ndarray:
        x = item["x"]
        _check_frames(tuple(x.shape), grid, f"train item {i}")
        labels = np.zeros((x.shape[0], grid * grid), dtype=np.uint8)
        for t, magnitude in enumerate(raft_flow.sequence_magnitudes(model, x)):
            labels[t, np.argsort(-cell_means(magnitude, grid), kind="stable")[:top_k]] = 1
        return labels

    return disentangle.label_sequences(data, one, description=f"flow-grid labels (raft {size})", workers=1,
                                       dtype=np.uint8)


# ----- the task ----------------------------------------------------------------------------------------

class FlowGrid(disentangle.PseudoLabelTask):
    """Predict the top-k optical-flow cells of each frame from ``z_t`` (see the module docstring)."""

    Config = FlowGridConfig
    name = "flow-grid"
    loss_kind = "cross-entropy"

    def __init__(self, config: FlowGridConfig, ctx: disentangle.BuildContext):
        if ctx.data is not None:
            _check_frames((ctx.data.seq_len, *ctx.data.feature_shape), config.grid, "the dataset's frames")
        if config.method == "raft":
            raft_flow.check_weights(config.weights)  # a missing file is an error now, not after the data is built
        super().__init__(config, ctx, width=config.grid * config.grid, hidden=config.hidden)

    def cache_key(self, data: disentangle.SequenceData) -> str:
        # The key from before PseudoLabelTask existed (no name or version), so existing caches stay valid.
        c = self.config
        if c.method == "raft":  # the weights change the labels: key on the file too
            st = raft_flow.check_weights(c.weights).stat()
            return disentangle.fingerprint(data.fingerprint, c.grid, c.top_k, c.method, c.raft_size, st.st_size,
                                           int(st.st_mtime))
        return disentangle.fingerprint(data.fingerprint, c.grid, c.top_k, c.method)

    def compute_labels(self, data: disentangle.SequenceData) -> np.ndarray:
        c = self.config
        if c.method == "raft":
            return compute_raft_labels(data, c.grid, c.top_k, c.weights, c.raft_size)
        return compute_labels(data, c.grid, c.top_k, c.method)

    def prepare(self, data: disentangle.SequenceData, ctx: disentangle.BuildContext) -> None:
        _check_frames((data.spec.seq_len, *data.spec.feature_shape), self.config.grid, "the dataset's frames")
        super().prepare(data, ctx)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Cell logits ``(B, T, grid*grid)`` from ``z_1:T`` ``(B, T, z_t_dim)``."""
        return self.predict(z)


@disentangle.hookimpl
def register_tasks(register):
    register("flow-grid", FlowGrid)
