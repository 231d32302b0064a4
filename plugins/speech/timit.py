"""``timit``: a user's copy of the TIMIT corpus (LDC93S1; licensed, never shipped) or a stand-in in its layout.

Layout (LDC's; upper- or lower-case names both work)::

    <root>/TRAIN/DR1/FCJF0/SA1.WAV    NIST SPHERE audio, 16 kHz (read with soundfile)
    <root>/TRAIN/DR1/FCJF0/SA1.TXT    the sentence (optional; kept as meta "text")
    <root>/TEST/DR1/FAKS0/SX403.WAV   ...

``root`` is the recipe's ``data.root`` (or ``--set data.root=...``), else ``$TIMIT_ROOT``. TIMIT's own
speaker-disjoint TRAIN/TEST split is used. Per utterance: the speaker is the folder name (its first
letter is the sex, M or F), the dialect region the ``DR<n>`` folder, the content the sentence id
(``SA1``, ``SX403``, ...: the SA sentences are read by every speaker, so the ``eer`` metric's
different-content trials matter here). Labels: ``sex`` (2 classes) and ``dialect`` (8), both static;
meta: ``utterance`` (``TEST/DR1/FAKS0/SX403``), ``speaker``, ``content``, ``offset``, ``sex``,
``dialect``, ``text``. Audio goes through the shared speech front end
(:mod:`disentangle_plugins.speech.corpus`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import attrs

import disentangle
from disentangle_plugins.speech.corpus import SpeechCorpus, Utterance

SPLITS = {"TRAIN": "train", "TEST": "test"}
LAYOUT = "<root>/TRAIN|TEST/DR<n>/<SPEAKER>/<SENTENCE>.WAV (NIST SPHERE; lower-case names also work)"
STAND_IN = ("no TIMIT? build a synthetic stand-in in its layout: disentangle speech build-corpus OUT "
            "(see docs/speech.md), then --set data.root=OUT")


@attrs.frozen
class TimitConfig:
    """Recipe parameters of ``timit``."""

    root: str = ""
    """The TIMIT folder (holding TRAIN/ and TEST/); empty: ``$TIMIT_ROOT``."""
    seq_len: int = attrs.field(default=20, validator=disentangle.validators.int_in_range(2))
    """Frames per window T (20 frames = 200 ms, as FHVAE/DSVAE)."""
    shift: int = attrs.field(default=10, validator=disentangle.validators.positive_int)
    """Frames between the starts of consecutive windows of an utterance."""
    exclude_sa: bool = False
    """Leave out the two SA sentences that every speaker reads."""
    max_speakers: int = attrs.field(default=0, validator=disentangle.validators.int_in_range(0))
    """Use at most this many speakers per split (0: all; a smaller, faster subset)."""


def _child(folder: Path, name: str) -> Path | None:
    """``folder/name`` matched case-insensitively."""
    for p in folder.iterdir():
        if p.name.upper() == name:
            return p
    return None


def find_root(root: str) -> tuple[Path, dict[str, Path]]:
    """The root and its ``{"train": TRAIN folder, "test": TEST folder}``, or a clear error."""
    given = root or os.environ.get("TIMIT_ROOT", "")
    if not given:
        raise disentangle.DisentangleError(
            f"timit: no data folder given; expected TIMIT's layout {LAYOUT}",
            hint="set data.root in the recipe, --set data.root=/path/to/TIMIT, or TIMIT_ROOT; " + STAND_IN)
    path = Path(given).expanduser()
    if not path.is_dir():
        raise disentangle.DisentangleError(f"timit: the data folder {path} does not exist; expected {LAYOUT}",
                                           hint="check data.root / TIMIT_ROOT; " + STAND_IN)
    # a copy unpacked one level deeper (TIMIT/TIMIT/TRAIN, data/TRAIN) is found too
    for candidate in (path, *(p for p in sorted(path.iterdir()) if p.is_dir())):
        found = {split: _child(candidate, name) for name, split in SPLITS.items()}
        if all(found.values()):
            return candidate, found  # type: ignore[return-value]
    raise disentangle.DisentangleError(
        f"timit: {path} has no TRAIN and TEST folders; expected {LAYOUT}",
        hint="point data.root / TIMIT_ROOT at the folder that holds TRAIN/ and TEST/; " + STAND_IN)


def read_text(wav: Path) -> str:
    """The sentence of ``.TXT`` beside ``wav`` (without its two sample offsets), or ``""``."""
    stem = wav.name.split(".")[0]
    for suffix in (".TXT", ".txt"):
        txt = wav.with_name(stem + suffix)
        if txt.is_file():
            words = txt.read_text(errors="replace").split()
            return " ".join(words[2:] if len(words) > 2 and all(w.isdigit() for w in words[:2]) else words)
    return ""


def list_utterances(config: TimitConfig) -> list[Utterance]:
    root, splits = find_root(config.root)
    utterances = []
    for split, folder in splits.items():
        speakers = sorted((spk for dr in sorted(folder.iterdir()) if dr.is_dir() and re.fullmatch(r"DR\d", dr.name.upper())
                           for spk in sorted(dr.iterdir()) if spk.is_dir()), key=lambda p: (p.parent.name.upper(), p.name.upper()))
        if config.max_speakers:
            speakers = speakers[: config.max_speakers]
        for spk in speakers:
            dialect, speaker = spk.parent.name.upper(), spk.name.upper()
            sex = speaker[0]
            seen = set()
            for wav in sorted(spk.iterdir()):
                if not wav.name.upper().endswith(".WAV") or wav.name.upper().endswith(".WAV.WAV"):
                    continue
                sentence = wav.name.split(".")[0].upper()
                if sentence in seen or (config.exclude_sa and sentence.startswith("SA")):
                    continue
                seen.add(sentence)
                utterances.append(Utterance(
                    path=wav, split=split, utterance=f"{split.upper()}/{dialect}/{speaker}/{sentence}",
                    speaker=speaker, content=sentence,
                    labels={"sex": int(sex == "M"), "dialect": min(max(int(dialect[2:]), 1), 8) - 1},
                    meta={"sex": sex, "dialect": dialect, "text": read_text(wav)}))
    for split in SPLITS.values():
        if not any(u.split == split for u in utterances):
            raise disentangle.DisentangleError(
                f"timit: no .WAV files under {splits[split]}; expected {LAYOUT}",
                hint="check data.root / TIMIT_ROOT; " + STAND_IN)
    return utterances


class Timit(SpeechCorpus):
    """TIMIT or a stand-in in its layout (see the module docstring)."""

    Config = TimitConfig
    name = "timit"

    def __init__(self, config: TimitConfig, ctx: disentangle.BuildContext):
        self.config = config
        self.build(list_utterances(config), config.seq_len, config.shift, ctx,
                   static_factors={"sex": 2, "dialect": 8}, dynamic_factors={})


@disentangle.hookimpl
def register_datasets(register):
    register("timit", Timit)
