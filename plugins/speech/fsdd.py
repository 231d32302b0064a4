"""``fsdd``: the Free Spoken Digit Dataset (6 speakers say the digits 0-9, 8 kHz WAV, CC BY-SA 4.0).

Files are ``<root>/recordings/{digit}_{speaker}_{take}.wav`` (``root`` may also be the recordings
folder itself). The usual split: takes ``0..test_takes-1`` (0-4) are test, the rest train; the same six
speakers are in both (closed set). For choosing settings without looking at the test split, a
validation split: ``first_take = 5`` with ``test_takes = 10`` leaves takes 0-4 unread, tests on takes 5-9
and trains on 10-49. Labels: ``speaker`` (static, 6 classes) and ``digit`` (dynamic, 10
classes); meta: ``utterance`` (the file stem), ``speaker``, ``content`` (the digit), ``offset``.
Audio goes through the shared speech front end (:mod:`disentangle_plugins.speech.corpus`).
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

import disentangle
from disentangle_plugins.speech.corpus import SpeechCorpus, Utterance

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "../shared/data/fsdd"


@attrs.frozen
class FSDDConfig:
    """Recipe parameters of ``fsdd``."""

    root: str = ""
    """The FSDD folder (holding ``recordings/``); empty: ``$FSDD_ROOT``, else the repository's sibling ``shared/data/fsdd``."""
    seq_len: int = attrs.field(default=20, validator=disentangle.validators.int_in_range(2))
    """Frames per window T (20 frames = 200 ms, as FHVAE/DSVAE)."""
    shift: int = attrs.field(default=10, validator=disentangle.validators.positive_int)
    """Frames between the starts of consecutive windows of an utterance."""
    test_takes: int = attrs.field(default=5, validator=disentangle.validators.int_in_range(1, 49))
    """Takes first_take..test_takes-1 of every speaker and digit are the test split (upstream: 5)."""
    first_take: int = attrs.field(default=0, validator=disentangle.validators.int_in_range(0, 48))
    """Takes below this are left out: 5, with test_takes 10, makes takes 5-9 a validation split."""
    speakers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Only these speakers (empty: all six)."""
    max_takes: int = attrs.field(default=50, validator=disentangle.validators.int_in_range(2, 50))
    """Only takes below this (a smaller, faster subset for tests)."""


def find_root(root: str) -> Path:
    path = Path(root or os.environ.get("FSDD_ROOT", "") or DEFAULT_ROOT).expanduser()
    for candidate in (path / "recordings", path):
        if candidate.is_dir() and any(candidate.glob("*_*_*.wav")):
            return candidate
    raise disentangle.DisentangleError(
        f"fsdd: no recordings found in {path} (expected files recordings/{{digit}}_{{speaker}}_{{take}}.wav)",
        hint="set data.root (or FSDD_ROOT) to a copy of the Free Spoken Digit Dataset, "
             "https://github.com/Jakobovski/free-spoken-digit-dataset")


class FSDD(SpeechCorpus):
    """The Free Spoken Digit Dataset (see the module docstring)."""

    Config = FSDDConfig
    name = "fsdd"

    def __init__(self, config: FSDDConfig, ctx: disentangle.BuildContext):
        self.config = config
        folder = find_root(config.root)
        if config.first_take >= config.test_takes:
            raise disentangle.DisentangleError(
                f"fsdd: data.first_take ({config.first_take}) must be below data.test_takes ({config.test_takes}), "
                "or the test split is empty",
                hint="for a validation split use data.first_take=5 with data.test_takes=10")
        unknown = set(config.speakers) - set(SPEAKERS)
        if unknown:
            raise disentangle.DisentangleError(f"fsdd: unknown speakers {sorted(unknown)} in data.speakers",
                                               hint=f"choose among {', '.join(SPEAKERS)}")
        keep = config.speakers or SPEAKERS
        utterances = []
        for path in sorted(folder.glob("*_*_*.wav")):
            digit, speaker, take = path.stem.split("_")
            if speaker not in keep or not config.first_take <= int(take) < config.max_takes:
                continue
            utterances.append(Utterance(
                path=path, split="test" if int(take) < config.test_takes else "train", utterance=path.stem,
                speaker=speaker, content=digit, labels={"speaker": SPEAKERS.index(speaker), "digit": int(digit)}))
        self.build(utterances, config.seq_len, config.shift, ctx,
                   static_factors={"speaker": len(SPEAKERS)}, dynamic_factors={"digit": 10})


@disentangle.hookimpl
def register_datasets(register):
    register("fsdd", FSDD)
