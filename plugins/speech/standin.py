"""``disentangle speech build-corpus``: a synthetic multi-speaker corpus in TIMIT's layout, for users without TIMIT.

Speech comes from offline synthesis with eSpeak NG (Debian/Ubuntu: ``apt-get install espeak-ng``; macOS:
``brew install espeak-ng``). Each speaker is an eSpeak voice variant with its own pitch, rate and
English accent, all drawn from ``seed``; everyone reads the two shared ``SA`` sentences (as in
TIMIT) and ``sentences`` further Harvard sentences (IEEE 1969, public domain) drawn per speaker. Speakers
are split speaker-disjointly (every ``test_every``-th speaker is a test speaker) and spread over eight
``DR<n>`` folders. Files are 16 kHz NIST SPHERE ``.WAV`` with a TIMIT-style ``.TXT`` beside each::

    OUT/TRAIN/DR1/MSYN000/SA1.WAV   OUT/TRAIN/DR1/MSYN000/SA1.TXT   ...   OUT/TEST/DR4/FSYN003/SX12.WAV

The corpus is a deterministic function of the options and the eSpeak NG version. Run
``disentangle run recipes/timit.toml --set data.root=OUT`` on it unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import disentangle

#: Harvard sentences, lists 1-3 (IEEE Recommended Practice for Speech Quality Measurements, 1969; public domain).
HARVARD = (
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "Large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
)
#: The two sentences every speaker reads (TIMIT's SA1/SA2 are its dialect sentences; these are ours).
SHARED = ("She had your dark suit in greasy wash water all year.", "Don't ask me to carry an oily rag like that.")
ACCENTS = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp")


def espeak() -> str:
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    if exe is None:
        raise disentangle.DisentangleError(
            "building the stand-in corpus needs the speech synthesiser eSpeak NG, which is not installed",
            hint="install it: apt-get install espeak-ng (Debian/Ubuntu) or brew install espeak-ng (macOS)")
    return exe


def variants(exe: str) -> list[tuple[str, str]]:
    """eSpeak NG's voice variants as ``(name, "M" | "F")``, sorted by name."""
    out = subprocess.run([exe, "--voices=variant"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[1] == "variant":
            gender = parts[2].split("/")[-1]
            found.append((parts[4].split("/")[-1], "F" if gender == "F" else "M"))
    return sorted(set(found))


def synthesise(exe: str, text: str, voice: str, pitch: int, rate: int) -> np.ndarray:
    """Float32 16 kHz mono speech of ``text``."""
    from disentangle_plugins.speech import features

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-p", str(pitch), "-a", "100", "-s", str(rate), "-w", str(wav),
                        "--", text], check=True, capture_output=True)
        return features.read_audio(wav)


def build_corpus(out: Path, speakers: int = 24, sentences: int = 8, test_every: int = 4, seed: int = 0,
                 progress: bool = True) -> dict[str, int]:
    """Write the corpus into ``out`` (see the module docstring); returns counts by split."""
    sf = disentangle.require("soundfile", extra="speech", purpose="building the stand-in corpus")
    exe = espeak()
    if test_every < 2 or speakers < test_every:
        raise disentangle.DisentangleError(f"--speakers {speakers} --test-every {test_every}: need test_every >= 2 and at least test_every speakers",
                                           hint="so that both the train and the test split have speakers")
    if not 1 <= sentences <= len(HARVARD):
        raise disentangle.DisentangleError(f"--sentences {sentences}: choose 1 to {len(HARVARD)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise disentangle.DisentangleError(f"{out} exists and is not empty",
                                           hint="choose a new folder; nothing was written")
    voices = variants(exe)
    rng = np.random.default_rng(seed)
    jobs = []
    for k in range(speakers):
        name, sex = voices[int(rng.integers(len(voices)))]
        accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
        pitch, rate = int(rng.integers(15, 85)), int(rng.integers(125, 185))
        picks = rng.choice(len(HARVARD), size=sentences, replace=False)
        split = "TEST" if k % test_every == test_every - 1 else "TRAIN"
        speaker = f"{sex}SYN{k:03d}"
        folder = out / split / f"DR{k % 8 + 1}" / speaker
        texts = [(f"SA{i + 1}", t) for i, t in enumerate(SHARED)] + [(f"SX{int(j)}", HARVARD[int(j)]) for j in picks]
        jobs.append((folder, f"{accent}+{name}", pitch, rate, texts))
    counts = {"TRAIN": 0, "TEST": 0}
    files = [(folder, voice, pitch, rate, sentence, text)
             for folder, voice, pitch, rate, texts in jobs for sentence, text in texts]
    for folder, voice, pitch, rate, sentence, text in (
            disentangle.track(files, total=len(files), description="synthesising") if progress else files):
        folder.mkdir(parents=True, exist_ok=True)
        wave = synthesise(exe, text, voice, pitch, rate)
        sf.write(folder / f"{sentence}.WAV", np.clip(wave, -1, 1), 16000, format="NIST", subtype="PCM_16")
        (folder / f"{sentence}.TXT").write_text(f"0 {len(wave)} {text}\n")
        counts[folder.parts[-3]] += 1
    return counts


@disentangle.hookimpl
def register_commands(cli):
    import typer

    speech = typer.Typer(help="Speech tools (from the speech plug-ins).", no_args_is_help=True)

    @speech.command("build-corpus")
    def build(out: Path = typer.Argument(..., help="New folder for the corpus (TIMIT layout)."),
              speakers: int = typer.Option(24, help="Number of synthetic speakers."),
              sentences: int = typer.Option(8, help="Harvard sentences per speaker, besides the 2 shared ones."),
              test_every: int = typer.Option(4, help="Every n-th speaker is a test speaker."),
              seed: int = typer.Option(0, help="Seed of the voices and sentence choices.")) -> None:
        """Synthesise a multi-speaker stand-in for TIMIT with eSpeak NG (see docs/speech.md)."""
        counts = build_corpus(out, speakers, sentences, test_every, seed)
        typer.echo(f"wrote {counts['TRAIN']} train and {counts['TEST']} test utterances to {out}; "
                   f"train on it with: disentangle run recipes/timit.toml --set data.root={out}")

    cli.add_typer(speech, name="speech")
