"""What every speech dataset shares: utterances -> cached features -> fixed windows of T frames.

A dataset plug-in (``fsdd``, ``timit``) lists its utterances as :class:`Utterance` records (file,
split, class labels, metadata); :class:`SpeechCorpus` does the rest:

- **Where the waveform -> filterbank transform happens.** Here, once: every file goes through
  :func:`disentangle_plugins.speech.features.utterance_features` (16 kHz, level-normalised, 80-d
  log-mel, 25 ms / 10 ms) and the result is cached in ``<cache_dir>/speech/<fingerprint>.npz``.
  The data space of the model is the *normalised* log-mel frame ``(80,)``: each bin has the mean
  and standard deviation of the train split subtracted/divided (:attr:`SpeechCorpus.stats`, also in
  the cache and so the same for training, ``evaluate`` and ``sample``). The ``mel-fbank``
  encoder/decoder therefore work on 80-d frames; :meth:`SpeechCorpus.export` undoes the
  normalisation (log-mel as computed from the audio) and :meth:`SpeechCorpus.to_audio` turns
  windows back into (approximate, Griffin-Lim) sound for listening to the swaps.
- **Windows.** An utterance of ``n`` frames gives the windows starting at ``0, shift, 2*shift, ...``
  (plus one ending at its last frame, so the tail is covered); an utterance shorter than ``T`` is
  padded at the end with its quietest frame (silence) and gives one window. Items are windows:
  ``x`` ``(T, 80)``, ``labels`` (class labels for evaluation) and ``meta`` (``utterance``, ``speaker``,
  ``content``, ``offset`` = first frame of the window, plus the dataset's own fields).
- **Beside the windows**, each split keeps the per-frame energy in dB relative to the utterance's
  loudest frame (``energy``, ``(N, T)``; the ``volume`` task's input) and one mean-MFCC vector per
  utterance (``utterance_mfcc``; the ``eer`` metric's baseline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch

import disentangle
from disentangle_plugins.speech import features

#: Bump when the windowing or the cache layout changes.
CORPUS_VERSION = 1
#: Width in pixels of one frame in pictures.
FRAME_PX = 4
#: What listeners are told about :meth:`SpeechCorpus.to_audio`'s sound.
GRIFFIN_LIM_NOTE = ("These are Griffin-Lim approximations from the 80-d log-mel frames (torchaudio "
                    f"InverseMelScale + GriffinLim, {features.GRIFFIN_LIM_ITERS} iterations): the model "
                    "does not model phase, so they sound rougher than the recordings; each is one "
                    "window (T frames x 10 ms). "
                    "Sequences a and b went through the same inversion, so compare the swap with them.")


@attrs.frozen
class Utterance:
    """One audio file of a corpus."""

    path: Path
    split: str
    """``"train"`` or ``"test"``."""
    utterance: str
    """A unique id, e.g. ``"7_jackson_32"`` or ``"TEST/DR1/FAKS0/SA1"``."""
    speaker: str
    content: str
    """What is said (a digit, a sentence id): trials whose content differs are reported apart."""
    labels: dict[str, int] = attrs.field(factory=dict)
    """Class labels for evaluation (e.g. ``{"speaker": 3, "digit": 7}``)."""
    meta: dict[str, str] = attrs.field(factory=dict)
    """Further per-item facts (e.g. sex, dialect region)."""


def window_starts(n: int, seq_len: int, shift: int) -> list[int]:
    """First frames of the windows of an utterance of ``n`` frames (see the module docstring)."""
    if n <= seq_len:
        return [0]
    starts = list(range(0, n - seq_len + 1, shift))
    if starts[-1] != n - seq_len:
        starts.append(n - seq_len)
    return starts


def pad_to(a: np.ndarray, length: int, fill_row: int) -> np.ndarray:
    """``a`` ``(n, ...)`` padded at the end to ``length`` rows by repeating row ``fill_row``."""
    if len(a) >= length:
        return a
    return np.concatenate([a, np.repeat(a[fill_row:fill_row + 1], length - len(a), axis=0)])


class SpeechSplit(disentangle.ArraySplit):
    """One split: windows ``x`` ``(N, T, 80)`` (normalised log-mel), labels, meta, energy, utterance MFCCs."""

    def __init__(self, x: np.ndarray, labels: dict[str, np.ndarray], meta: dict[str, list],
                 energy: np.ndarray, utterances: list[str], utterance_mfcc: np.ndarray):
        self.x, self.labels, self.meta, self.energy = x, labels, meta, energy
        #: Ids of the split's utterances, in order, and their mean MFCC vectors ``(U, 20)``.
        self.utterances, self.utterance_mfcc = utterances, utterance_mfcc

    def stored_x(self) -> np.ndarray:
        return self.x

    def stored_labels(self) -> dict[str, np.ndarray]:
        return self.labels

    def stored_meta(self) -> dict[str, Any]:
        return self.meta


class SpeechCorpus(disentangle.SequenceData):
    """Base of the speech datasets (see the module docstring). Subclasses call :meth:`build`."""

    name = "speech"

    def build(self, utterances: Sequence[Utterance], seq_len: int, shift: int, ctx: disentangle.BuildContext,
              static_factors: dict[str, int], dynamic_factors: dict[str, int]) -> None:
        if not utterances:
            raise disentangle.DisentangleError(f"{self.name}: no audio files found")
        self.spec = disentangle.DataSpec(feature_shape=(features.NUM_MEL,), seq_len=seq_len,
                                         static_factors=static_factors, dynamic_factors=dynamic_factors)
        files = [(str(u.path), u.path.stat().st_size) for u in utterances]
        key = disentangle.fingerprint(self.name, CORPUS_VERSION, features.FEATURES_VERSION, files)
        feats = self._features(utterances, Path(ctx.cache_dir) / "speech" / f"{self.name}-{key}.npz")
        train_frames = np.concatenate([f for f, u in zip(feats["fbank"], utterances) if u.split == "train"])
        mean, std = train_frames.mean(0), train_frames.std(0) + 1e-5
        #: Per-bin mean and std of the train split's log-mel frames (the data-space normalisation).
        self.stats = {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}
        mfcc_all = np.stack([m.mean(0) for m in feats["mfcc"]])
        is_train = np.array([u.split == "train" for u in utterances])
        m_mean, m_std = mfcc_all[is_train].mean(0), mfcc_all[is_train].std(0) + 1e-5
        self._splits = {}
        for split in ("train", "test"):
            xs, energy, labels, meta, utts, mfcc = [], [], {}, {}, [], []
            for u, fb, en, mf in zip(utterances, feats["fbank"], feats["energy"], mfcc_all):
                if u.split != split:
                    continue
                quiet = int(np.argmin(en))
                fb = pad_to((fb - mean) / std, seq_len, quiet)
                en = pad_to(en, seq_len, quiet)
                utts.append(u.utterance)
                mfcc.append((mf - m_mean) / m_std)
                for start in window_starts(len(fb), seq_len, shift):
                    xs.append(fb[start:start + seq_len])
                    energy.append(en[start:start + seq_len])
                    for k, v in u.labels.items():
                        labels.setdefault(k, []).append(v)
                    row = {"utterance": u.utterance, "speaker": u.speaker, "content": u.content,
                           "offset": start, **u.meta}
                    for k, v in row.items():
                        meta.setdefault(k, []).append(v)
            if not xs:
                raise disentangle.DisentangleError(f"{self.name}: the {split} split has no utterances",
                                                   hint="check the data folder and the split settings")
            self._splits[split] = SpeechSplit(
                np.stack(xs).astype(np.float32), {k: np.asarray(v, dtype=np.int64) for k, v in labels.items()},
                meta, np.stack(energy).astype(np.float32), utts, np.stack(mfcc).astype(np.float32))
        # the split of each file too: the same files split otherwise (data.test_takes) are other data
        self._fingerprint = disentangle.fingerprint(key, seq_len, shift, [u.split for u in utterances])

    def _features(self, utterances: Sequence[Utterance], path: Path) -> dict[str, list[np.ndarray]]:
        """Per-utterance ``fbank``/``energy``/``mfcc`` arrays, computed once and cached in ``path``."""
        names = ("fbank", "energy", "mfcc")
        if path.exists():
            try:
                with np.load(path) as z:
                    lengths = z["lengths"]
                    if len(lengths) == len(utterances):
                        cuts = np.cumsum(lengths)[:-1]
                        return {k: np.split(z[k], cuts) for k in names}
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache: recompute below
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small transforms per file: one thread is several times faster
        try:
            out: dict[str, list[np.ndarray]] = {k: [] for k in names}
            for u in disentangle.track(utterances, total=len(utterances), description=f"{self.name} filterbanks"):
                f = features.utterance_features(u.path)
                for k in names:
                    out[k].append(f[k])
        finally:
            torch.set_num_threads(threads)
        lengths = np.array([len(a) for a in out["fbank"]])
        with disentangle.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, lengths=lengths, **{k: np.concatenate(v) for k, v in out.items()})
        return out

    def split(self, name: str) -> SpeechSplit:
        try:
            return self._splits[name]
        except KeyError:
            raise disentangle.DisentangleError(
                f"{self.name} has no split '{name}'; available: {', '.join(self._splits)}") from None

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    #: The run's pictures draw a window's frames side by side without a gap: one spectrogram per row.
    frame_gap = 0

    def to_images(self, x: torch.Tensor) -> torch.Tensor:
        """Each frame as a coloured column ``(3, 80, FRAME_PX)``, low frequencies at the bottom, so that a
        row of frames in the run's pictures reads as a spectrogram (normalised log-mel, -3..3 std)."""
        v = ((x.detach().float().cpu().clamp(-3, 3) + 3) / 6).flip(-1)  # (B, T, 80), top row = highest bin
        rgb = torch.stack([(1.6 * v).clamp(0, 1), (1.6 * v - 0.6).clamp(0, 1),
                           (0.35 + 0.9 * v * (1 - v) - 0.3 * v).clamp(0, 1)], dim=2)  # (B, T, 3, 80)
        return rgb[..., None].expand(*rgb.shape, FRAME_PX).contiguous()

    def to_audio(self, x: torch.Tensor) -> disentangle.Audio:
        """Each window ``(T, 80)`` as 16 kHz sound, T x 10 ms long: the normalisation undone, then
        :func:`~disentangle_plugins.speech.features.log_mel_to_audio` (Griffin-Lim from the log-mel)."""
        return disentangle.Audio(features.log_mel_to_audio(self.export(x)), features.SAMPLE_RATE,
                                 method="griffin-lim", note=GRIFFIN_LIM_NOTE)

    def export(self, x: torch.Tensor) -> np.ndarray:
        """Log-mel ``(B, T, 80)`` float32, the normalisation undone."""
        a = x.detach().cpu().float().numpy()
        return a * self.stats["std"] + self.stats["mean"]
