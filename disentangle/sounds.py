"""WAV files of the z_f / z_1:T swap, for data that can be heard (``SequenceData.to_audio``).

Beside ``swap.png``, for the first :data:`PAIRS` of its pairs ``(a, b)`` (the same sequences as the
picture's rows, :func:`disentangle.visualize.swap_pairs`): ``swap-<i>-a<tag>.wav`` (sequence a),
``swap-<i>-b<tag>.wav`` (sequence b) and ``swap-<i><tag>.wav`` (z_f of a with z_1:T of b), where
``<tag>`` is ``-<Audio.method>`` (e.g. ``-griffin-lim``) when the sound is made by a method rather
than being the data itself. ``sounds.txt`` says what each file is, with the dataset's note.
Written with the standard library's ``wave`` module (16-bit PCM), so the core needs no audio package.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch

from disentangle.errors import DisentangleError
from disentangle.interfaces import Audio, SequenceData
from disentangle.io import atomic_path, atomic_write_text
from disentangle.model import S3VAE
from disentangle.training.guard import call_plugin
from disentangle.visualize import shown_indices, shown_sequences, swap_pairs

#: How many of the swap picture's pairs are written as sound.
PAIRS = 2
#: The file that says what the WAV files are.
INDEX = "sounds.txt"


def as_audio(result: Any, batch: int, who: str = "to_audio") -> Audio | None:
    """``result`` of ``to_audio`` on ``batch`` sequences as an :class:`Audio` with a list of
    ``batch`` 1-d float tensors on the CPU, or ``None``; a malformed result is a clear error."""
    if result is None:
        return None
    if isinstance(result, tuple) and len(result) == 2:
        result = Audio(*result)
    if not isinstance(result, Audio):
        raise DisentangleError(f"{who} returned {type(result).__name__}; expected disentangle.Audio, "
                               "a (waves, sample_rate) tuple or None")
    waves = list(result.waves) if isinstance(result.waves, (list, tuple)) or \
        (isinstance(result.waves, torch.Tensor) and result.waves.dim() == 2) else None
    if waves is None or len(waves) != batch or \
            not all(isinstance(w, torch.Tensor) and w.dim() == 1 and w.numel() > 0 for w in waves):
        raise DisentangleError(f"{who} must give one non-empty 1-d waveform per sequence ({batch}): a float "
                               "tensor (B, samples) or a list of B 1-d tensors")
    if isinstance(result.sample_rate, bool) or not isinstance(result.sample_rate, int) or result.sample_rate <= 0:
        raise DisentangleError(f"{who}: sample_rate must be a positive int, not {result.sample_rate!r}")
    return Audio([w.detach().float().cpu() for w in waves], result.sample_rate, result.method, result.note)


def write_wav(samples: torch.Tensor, sample_rate: int, path: Path) -> Path:
    """Mono 16-bit PCM WAV (atomically). Non-finite samples become 0; a clip that exceeds [-1, 1]
    is scaled down to fit rather than clipped."""
    a = np.nan_to_num(samples.numpy().astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(a).max()) if a.size else 0.0
    if peak > 1.0:
        a = a / peak
    pcm = np.round(a * 32767).astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as fh:
            fh.setnchannels(1)
            fh.setsampwidth(2)
            fh.setframerate(sample_rate)
            fh.writeframes(pcm.tobytes())
    return path


@torch.no_grad()
def save_sounds(model: S3VAE, data: SequenceData, out_dir: Path, n: int, device: torch.device,
                pairs: int = PAIRS) -> list[Path]:
    """Write the WAV files and ``sounds.txt`` described in the module docstring; nothing when the
    data has no ``to_audio`` (or it returns ``None``) or there is no pair to swap."""
    to_audio = getattr(data, "to_audio", None)
    if to_audio is None:
        return []
    a, b = swap_pairs(shown_sequences(data, n, device))
    split = data.split("test")
    index = shown_indices(len(split), min(n, len(split)))  # test-split index of each shown sequence

    def named(i: int) -> str:  # "test sequence 7 (speaker george, content 0)" when items carry meta
        meta = split[i].get("meta") or {}
        return f"test sequence {i}" + (f" ({', '.join(f'{k} {v}' for k, v in meta.items())})" if meta else "")

    half = len(a)  # pair i: shown sequences i and half + i
    a, b = a[:pairs], b[:pairs]
    k = len(a)
    if k == 0:
        return []
    audio = as_audio(call_plugin("the dataset's to_audio", to_audio, torch.cat([a, b, model.swap(a, b)])),
                     3 * k, f"{type(data).__name__}.to_audio")
    if audio is None:
        return []
    tag = f"-{audio.method}" if audio.method else ""
    written, lines = [], [
        f"Sounds of the first {k} pair(s) (a, b) of swap.png (pair i is its rows 4i+1 to 4i+4), "
        f"{audio.sample_rate} Hz mono:"]
    for i in range(k):
        for role, wave_, what in (("-a", audio.waves[i], f"a = {named(index[i])}, row {4 * i + 1}"),
                                  ("-b", audio.waves[k + i], f"b = {named(index[half + i])}, row {4 * i + 2}"),
                                  ("", audio.waves[2 * k + i], f"z_f of a with z_1:T of b, row {4 * i + 3}")):
            path = write_wav(wave_, audio.sample_rate, out_dir / f"swap-{i}{role}{tag}.wav")
            written.append(path)
            lines.append(f"  {path.name}: {what}")
    if audio.note:
        lines.append(audio.note)
    atomic_write_text("\n".join(lines) + "\n", out_dir / INDEX)
    return written
