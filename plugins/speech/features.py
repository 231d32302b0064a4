"""Audio -> frames: reading, resampling, level normalisation, 80-d log-mel filterbanks, frame energy, MFCCs.

Every speech dataset goes through :func:`utterance_features`, so all of them share one front end:

- audio is read with soundfile (WAV, NIST SPHERE, FLAC, ...), mixed to mono and resampled to 16 kHz with
  ``torchaudio.functional.resample``;
- the recording level is normalised per utterance: the waveform is scaled so that its *active* RMS
  (over the 25 ms frames within 40 dB of the loudest frame) is ``LEVEL_DBFS``. Without it the FSDD
  speakers differ by 12-22 dB and the level alone identifies them (a shortcut for z_f);
- frames are 25 ms Hamming windows every 10 ms (pre-emphasis 0.97, 512-point FFT, frames fully inside
  the signal as in Kaldi) through ``torchaudio.transforms.MelSpectrogram``; the log-mel filterbank has
  ``NUM_MEL`` = 80 bins; the MFCCs (the verification baseline) are the DCT of a 40-bin log-mel, 20
  coefficients;
- the frame energy (dB, relative to the utterance's loudest frame) is what the ``volume`` task
  thresholds.

Back to sound, only to listen (:func:`log_mel_to_audio`): the log-mel frames are undone with the same
settings (``torchaudio.transforms.InverseMelScale`` to a power spectrogram, ``GriffinLim`` for a phase,
de-emphasis). The phase is not modelled and the mel bins are coarser than the FFT, so it is an
approximation of how the frames sound, not the recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import disentangle

SAMPLE_RATE = 16_000
NUM_MEL = 80
NUM_CEPS = 20
FRAME_MS = 25.0
SHIFT_MS = 10.0
N_FFT = 512
LEVEL_DBFS = -20.0
#: Griffin-Lim iterations of :func:`log_mel_to_audio` (a few tenths of a second for a handful of windows).
GRIFFIN_LIM_ITERS = 32
#: Bump when anything below changes, so cached features are recomputed.
FEATURES_VERSION = 3


def _soundfile():
    return disentangle.require("soundfile", extra="speech", purpose="reading speech audio")


def _torchaudio():
    return disentangle.require("torchaudio", extra="speech", purpose="speech filterbanks")


_TRANSFORMS: dict = {}


def _transform(key: str, make):
    """Transforms are built once per process (their filter banks and kernels are the slow part)."""
    if key not in _TRANSFORMS:
        _TRANSFORMS[key] = make()
    return _TRANSFORMS[key]


def read_audio(path: str | Path) -> np.ndarray:
    """Mono float32 waveform of ``path`` at :data:`SAMPLE_RATE` (resampled when needed)."""
    sf = _soundfile()
    try:
        wave, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own LibsndfileError / RuntimeError
        raise disentangle.DisentangleError(f"cannot read the audio file {path}: {exc}",
                                           hint="check that the file is a complete WAV/SPHERE/FLAC file") from exc
    wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        import torch
        ta = _torchaudio()
        resample = _transform(f"resample-{rate}", lambda: ta.transforms.Resample(rate, SAMPLE_RATE))
        with torch.no_grad():
            wave = resample(torch.from_numpy(np.ascontiguousarray(wave))).numpy()
    return np.ascontiguousarray(wave, dtype=np.float32)


def frame_energy_db(wave: np.ndarray) -> np.ndarray:
    """Energy (dB, mean square) of each 25 ms / 10 ms frame (frames fully inside the signal)."""
    size, hop = int(SAMPLE_RATE * FRAME_MS / 1000), int(SAMPLE_RATE * SHIFT_MS / 1000)
    n = 1 + (len(wave) - size) // hop if len(wave) >= size else 0
    if n <= 0:
        return np.zeros(0, dtype=np.float32)
    idx = np.arange(size)[None, :] + hop * np.arange(n)[:, None]
    frames = wave[idx].astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    return (10 * np.log10((frames ** 2).mean(axis=1) + 1e-20)).astype(np.float32)  # floor: -200 dB


def normalise_level(wave: np.ndarray) -> np.ndarray:
    """Scale ``wave`` so that its active RMS (frames within 40 dB of the loudest) is :data:`LEVEL_DBFS`."""
    energy = frame_energy_db(wave)
    if energy.size == 0:
        return wave
    active = energy[energy >= energy.max() - 40.0]
    level = 10 * np.log10(np.mean(10 ** (active / 10)) + 1e-10)
    return (wave * 10 ** ((LEVEL_DBFS - level) / 20)).astype(np.float32)


def _mel(ta, n_mels: int):
    size, hop = int(SAMPLE_RATE * FRAME_MS / 1000), int(SAMPLE_RATE * SHIFT_MS / 1000)
    import torch
    return ta.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=size, hop_length=hop,
                                        n_mels=n_mels, center=False, window_fn=torch.hamming_window, power=2.0)


def utterance_features(path: str | Path) -> dict[str, np.ndarray]:
    """``{"fbank": (n, 80) log-mel, "energy": (n,) dB relative to the loudest frame, "mfcc": (n, 20)}``
    of one file (``torchaudio.transforms.MelSpectrogram``, 25 ms Hamming windows every 10 ms)."""
    import torch
    ta = _torchaudio()
    wave = normalise_level(read_audio(path))
    size = int(SAMPLE_RATE * FRAME_MS / 1000)
    if len(wave) < size:
        wave = np.pad(wave, (0, size - len(wave)))
    emphasised = np.append(wave[:1], wave[1:] - 0.97 * wave[:-1]).astype(np.float32)
    # MelSpectrogram centres the 400-sample window in its 512-point frame: pad by the difference so
    # that frame k covers samples [160 k, 160 k + 400), like the energies (and Kaldi).
    edge = (N_FFT - size) // 2
    w = torch.from_numpy(np.pad(emphasised, (edge, N_FFT - size - edge)))
    mel80 = _transform("mel80", lambda: _mel(ta, NUM_MEL))
    mel40 = _transform("mel40", lambda: _mel(ta, 40))
    dct = _transform("dct", lambda: ta.functional.create_dct(NUM_CEPS, 40, norm="ortho"))
    with torch.no_grad():
        fbank = torch.log(mel80(w).T + 1e-6).numpy()
        mfcc = (torch.log(mel40(w).T + 1e-6) @ dct).numpy()
    energy = frame_energy_db(wave)
    n = min(len(fbank), len(mfcc), len(energy))
    return {"fbank": fbank[:n].astype(np.float32), "energy": (energy[:n] - energy[:n].max()).astype(np.float32),
            "mfcc": mfcc[:n].astype(np.float32)}


def log_mel_to_audio(fbank: np.ndarray, seed: int = 0):
    """Waveforms ``(B, samples)`` (float tensor, :data:`SAMPLE_RATE`) that approximately have the
    log-mel frames ``fbank`` ``(B, n, 80)`` (as :func:`utterance_features` computes them): inverse mel
    scale (least squares), Griffin-Lim (:data:`GRIFFIN_LIM_ITERS` iterations, 25 ms Hamming windows
    every 10 ms, 512-point FFT), then the pre-emphasis undone. The random initial phase is drawn from
    ``seed`` without touching the global random state."""
    import torch
    ta = _torchaudio()
    size, hop = int(SAMPLE_RATE * FRAME_MS / 1000), int(SAMPLE_RATE * SHIFT_MS / 1000)
    # gelsd: some of the 80 narrow low-frequency mel filters are empty at a 512-point FFT (rank-deficient)
    inverse = _transform("inverse-mel80", lambda: ta.transforms.InverseMelScale(
        n_stft=N_FFT // 2 + 1, n_mels=NUM_MEL, sample_rate=SAMPLE_RATE, driver="gelsd"))
    griffin_lim = _transform("griffin-lim", lambda: ta.transforms.GriffinLim(
        n_fft=N_FFT, n_iter=GRIFFIN_LIM_ITERS, win_length=size, hop_length=hop, window_fn=torch.hamming_window,
        power=2.0))
    mel = (torch.from_numpy(np.ascontiguousarray(fbank, dtype=np.float32)).exp() - 1e-6).clamp_min(0)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wave = griffin_lim(inverse(mel.transpose(1, 2)))
        return ta.functional.deemphasis(wave, 0.97)
