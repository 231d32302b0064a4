"""How the networks that carry the FLOPs (encoder, decoder) run: numeric precision, memory layout,
compilation, and which CUDA kernels run them (timed or deterministic).

On CUDA, ``train.precision = "auto"`` runs the encoder and decoder under bf16 autocast and hands
their outputs on as float32, so the latent heads, the KL terms, the likelihood and every objective
stay in float32 (MI-MWS sums log-densities whose differences bf16 would lose). TF32 matmuls are
allowed for the rest. ``train.channels_last`` stores their 4-d weights channels-last (NHWC), so
that cuDNN runs convolutions and batch norm in that layout without converting around each call;
the state dict keeps its keys and values (a checkpoint loads into either layout). ``train.compile`` compiles the encoder and decoder in place
(``nn.Module.compile``), which keeps their state-dict keys, so checkpoints stay plain.

On CUDA cuDNN times its candidate kernels once per shape and keeps the fastest. Kernels that round
differently can be about as fast, so two processes may pick differently and their runs differ from
the first step (measured on an H200: docs/performance.md). ``train.deterministic = "on"`` picks them
by cuDNN's heuristics instead, among deterministic ones only, and turns on PyTorch's deterministic
algorithms (a warning, not an error, for an op that has none).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
from torch import nn

from disentangle.errors import DisentangleError


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto``/``fp32``/``bf16``) on ``device``, or None."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if precision == "bf16":
            raise DisentangleError("train.precision = \"bf16\": this GPU has no bf16 support",
                                   hint="use precision = \"fp32\" (or \"auto\")")
        return None
    return torch.bfloat16


def autocast_forward(module: nn.Module, device_type: str, dtype: torch.dtype) -> None:
    """Make ``module``'s forward run under autocast and return float32 (an instance attribute: the
    class, the parameters and the state dict are untouched)."""
    inner = module.forward

    @functools.wraps(inner)
    def forward(*args: Any, **kwargs: Any) -> Any:
        # No cast cache: each weight is used once per call, and a cache must not outlive a CUDA graph capture
        with torch.autocast(device_type, dtype=dtype, cache_enabled=False):
            out = inner(*args, **kwargs)
        return out.float() if isinstance(out, torch.Tensor) else out

    module.forward = forward  # type: ignore[method-assign]


def enabled(setting: str, device: torch.device) -> bool:
    """An ``auto``/``on``/``off`` switch of ``[train]``: ``auto`` means on CUDA."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def configure(model: nn.Module, device: torch.device, precision: str, compile: str,
              channels_last: str = "off", deterministic: str = "off") -> dict[str, Any]:
    """Apply precision, memory layout and compilation to ``model.encoder`` and ``model.decoder``,
    and choose the kernels (timed or deterministic); return what was chosen (recorded in
    environment.json)."""
    dtype = autocast_dtype(precision, device)
    exact = deterministic == "on"
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not exact  # fixed shapes: time the kernels once, keep the fastest
        torch.backends.cudnn.deterministic = exact
        if exact:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for repeatable sums
            torch.use_deterministic_algorithms(True, warn_only=True)
    nhwc, compiled = enabled(channels_last, device), enabled(compile, device)
    for part in (model.encoder, model.decoder):
        if nhwc:  # 4-d parameters and buffers only; convolutions then pick NHWC for their outputs
            part.to(memory_format=torch.channels_last)
        if dtype is not None:
            autocast_forward(part, device.type, dtype)
        if compiled:
            part.compile()
    return {"autocast": str(dtype).replace("torch.", "") if dtype else None,
            "channels_last": nhwc, "compiled": compiled, "deterministic": exact}
