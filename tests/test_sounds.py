"""The swap's sounds: WAV files beside swap.png for data with to_audio, none for data without."""

import tomllib
import wave

import numpy as np
import pytest
import torch

import disentangle
from disentangle.recipe import apply_overrides, parse_recipe
from disentangle.report import render
from disentangle.sounds import INDEX, save_sounds
from disentangle.training import build_pipeline, train
from disentangle.visualize import shown_indices, shown_sequences, swap_pairs
from toy_plugins import TOY_RECIPE, toy_registry


def recipe(*overrides):
    return parse_recipe(apply_overrides(tomllib.loads(TOY_RECIPE), list(overrides)), registry=toy_registry())


def read_wav(path):
    with wave.open(str(path), "rb") as fh:
        assert fh.getnchannels() == 1 and fh.getsampwidth() == 2
        return np.frombuffer(fh.readframes(fh.getnframes()), "<i2") / 32767, fh.getframerate()


def sine_audio(x):
    """One 440 Hz sine per sequence, its loudness the sequence's mean (so each sequence sounds its own)."""
    t = torch.arange(800) / 8000
    level = x.flatten(1).mean(1, keepdim=True).abs() + 0.1
    return (level * torch.sin(2 * np.pi * 440 * t)).clamp(-1, 1), 8000


@pytest.fixture
def pipe():
    return build_pipeline(recipe("eval.num_images=6"), torch.device("cpu"), toy_registry())


def test_data_without_to_audio_writes_no_sound(tmp_path):
    run = tmp_path / "run"
    train(recipe("train.max_steps=2"), run, registry=toy_registry())
    assert (run / "images" / "swap.png").exists()
    assert not list((run / "images").glob("*.wav")) and not (run / "images" / INDEX).exists()
    assert "<audio" not in render(run)


def test_to_audio_writes_a_b_and_the_swap_of_the_pictures_pairs(tmp_path, pipe):
    heard = []

    def to_audio(x):
        heard.append(x.clone())
        return disentangle.Audio(*sine_audio(x), method="sine", note="A test tone, not the data.")

    pipe.data.to_audio = to_audio
    out = tmp_path / "images"
    written = save_sounds(pipe.model, pipe.data, out, 6, torch.device("cpu"))
    names = [p.name for p in written]
    assert names == ["swap-0-a-sine.wav", "swap-0-b-sine.wav", "swap-0-sine.wav",
                     "swap-1-a-sine.wav", "swap-1-b-sine.wav", "swap-1-sine.wav"]
    # the sequences are the picture's: pairs (0, 3) and (1, 4) of the 6 shown test sequences, then the swaps
    a, b = swap_pairs(shown_sequences(pipe.data, 6, torch.device("cpu")))
    with torch.no_grad():
        swapped = pipe.model.swap(a[:2], b[:2])
    assert torch.equal(heard[0][:4], torch.cat([a[:2], b[:2]]))
    assert torch.allclose(heard[0][4:], swapped)
    for path, x in zip(written, [heard[0][i] for i in (0, 2, 4, 1, 3, 5)]):
        samples, rate = read_wav(path)
        assert rate == 8000 and len(samples) == 800
        want = sine_audio(x[None])[0][0].numpy()
        assert np.abs(samples - want).max() < 1e-3, path.name
    index = (out / INDEX).read_text()
    assert "swap-0-sine.wav: z_f of a with z_1:T of b" in index and f"b = test sequence {shown_indices(len(pipe.data.split('test')), 6)[3]}" in index
    assert "A test tone, not the data." in index


def test_plain_tuple_and_loud_sound(tmp_path, pipe):
    pipe.data.to_audio = lambda x: ([torch.full((50,), 4.0 * (i + 1)) for i in range(len(x))], 8000)
    written = save_sounds(pipe.model, pipe.data, tmp_path, 6, torch.device("cpu"), pairs=1)
    assert [p.name for p in written] == ["swap-0-a.wav", "swap-0-b.wav", "swap-0.wav"]
    samples, _ = read_wav(written[0])
    assert samples.max() == pytest.approx(1.0)  # scaled into [-1, 1], not wrapped around


@pytest.mark.parametrize("bad, match", [
    (lambda x: x, "expected disentangle.Audio"),
    (lambda x: (torch.zeros(len(x) - 1, 10), 8000), "one non-empty 1-d waveform per sequence"),
    (lambda x: (torch.zeros(len(x), 10), 0), "sample_rate must be a positive int"),
])
def test_malformed_to_audio_is_a_clear_error(tmp_path, pipe, bad, match):
    pipe.data.to_audio = bad
    with pytest.raises(disentangle.DisentangleError, match=match):
        save_sounds(pipe.model, pipe.data, tmp_path, 6, torch.device("cpu"))
    assert not list(tmp_path.glob("*.wav"))


def test_report_plays_the_sounds(tmp_path, pipe):
    pipe.data.to_audio = lambda x: sine_audio(x)
    save_sounds(pipe.model, pipe.data, tmp_path / "run" / "images", 6, torch.device("cpu"))
    page = render(tmp_path / "run")
    assert page.count("<audio controls") == 6 and "data:audio/wav;base64," in page
    assert "<script" not in page and "z_f of a with z_1:T of b" in page
