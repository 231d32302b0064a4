"""The ``raft`` backend of ``flow-grid``: torchvision's RAFT optical flow (Teed & Deng 2020), a learned
stand-in for the paper's FlowNet2, used **only with a weights file you give** (``weights``): nothing
downloads at run time.

The file is a ``state_dict`` of ``torchvision.models.optical_flow.raft_large`` (``size = "large"``) or
``raft_small`` (e.g. torchvision's ``Raft_Large_Weights.C_T_SKHT_V2``, fetched once on a machine with
network access: ``torch.save(raft_large(weights="C_T_SKHT_V2").state_dict(), "raft_large.pth")``), or a
checkpoint holding one under ``"state_dict"``/``"model"``.

Frames are resized so each side is a multiple of 8 and at least 128 px (RAFT's feature pyramid needs
it), scaled to [-1, 1], and the pairs of a sequence run as one batch on the GPU when there is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import disentangle

MIN_SIDE = 128
_HINT = ('give flow-grid a RAFT weights file: weights = "/path/raft_large.pth" (a state_dict of torchvision\'s '
         'raft_large or raft_small; on a machine with network access: torch.save(torchvision.models.optical_flow.'
         'raft_large(weights="C_T_SKHT_V2").state_dict(), "raft_large.pth")), or use method = "dis"')


def check_weights(path: str) -> Path:
    if not path:
        raise disentangle.DisentangleError('flow-grid: method = "raft" needs a weights file (nothing is downloaded)',
                                           hint=_HINT)
    file = Path(path).expanduser()
    if not file.is_file():
        raise disentangle.DisentangleError(f"flow-grid: the RAFT weights file {file} does not exist", hint=_HINT)
    return file


def load_raft(path: str, size: str, device: torch.device) -> torch.nn.Module:
    """RAFT (``size`` "large" or "small") with the weights of ``path``, in eval mode on ``device``."""
    from torchvision.models.optical_flow import raft_large, raft_small

    file = check_weights(path)
    model = (raft_large if size == "large" else raft_small)(weights=None, progress=False)
    try:
        state: Any = disentangle.safe_torch_load(file, "the RAFT weights", hint=_HINT)
    except disentangle.DisentangleError as exc:
        raise disentangle.DisentangleError(f"flow-grid: {exc.message}", hint=exc.hint) from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise disentangle.DisentangleError(
            f"flow-grid: {file} is not a state_dict of torchvision's raft_{size}: {str(exc)[:300]}",
            hint='set raft_size = "small" or "large" to match the file, or ' + _HINT) from exc
    return model.eval().to(device)


def _prepare(frames: torch.Tensor) -> torch.Tensor:
    """``(T, C, H, W)`` in [0, 1] -> ``(T, 3, H', W')`` in [-1, 1] with H', W' multiples of 8, >= 128."""
    x = frames.float().clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    h, w = x.shape[-2:]
    scale = max(1.0, MIN_SIDE / min(h, w))
    size = (int(np.ceil(h * scale / 8) * 8), int(np.ceil(w * scale / 8) * 8))
    if size != (h, w):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x * 2 - 1


@torch.inference_mode()
def sequence_magnitudes(model: torch.nn.Module, frames: torch.Tensor, iterations: int = 12) -> np.ndarray:
    """Flow magnitude ``(T, H', W')`` for each frame of ``(T, C, H, W)`` with flow-grid's convention:
    frame t >= 1 uses the flow from t to t-1 on t's grid, frame 0 the flow from 0 to 1."""
    device = next(model.parameters()).device
    x = _prepare(frames).to(device)
    t_len = x.shape[0]
    other = torch.cat([x[1:2], x[:-1]]) if t_len > 1 else x
    flows = model(x, other, num_flow_updates=iterations)[-1]  # (T, 2, H', W')
    return torch.linalg.vector_norm(flows.float(), dim=1).cpu().numpy()
