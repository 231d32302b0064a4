"""The speech plug-ins: front end, fsdd (fake tree + the shared copy), mel-fbank codec, volume, eer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing

sf = pytest.importorskip("soundfile")
pytest.importorskip("torchaudio")

from disentangle_plugins.speech import corpus, eer, features, fsdd, mel_fbank, volume  # noqa: E402

SHARED_FSDD = Path(__file__).resolve().parents[1] / "../shared/data/fsdd"


def tone(seconds: float, rate: int, pitch: float, gain: float = 0.3, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a silent gap in the middle (so it has voiced and silent frames)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in range(1, 6))
    wave = wave * (np.abs(t - seconds / 2) > seconds / 6)
    return (gain * wave / 3 + 1e-4 * rng.standard_normal(len(t))).astype(np.float32)


def write_fsdd(root: Path, speakers=("george", "theo"), digits=(0, 1, 2), takes=4, rate=8000) -> Path:
    rec = root / "recordings"
    rec.mkdir(parents=True)
    for s, speaker in enumerate(speakers):
        for d in digits:
            for k in range(takes):
                # theo is 20 dB quieter, as in the real data; level normalisation must remove that
                wave = tone(0.3 + 0.05 * d, rate, 120 + 60 * s + 10 * d, gain=0.3 if s == 0 else 0.03, seed=k)
                sf.write(rec / f"{d}_{speaker}_{k}.wav", wave, rate, subtype="PCM_16")
    return root


def ctx_for(tmp_path: Path) -> disentangle.BuildContext:
    return disentangle.BuildContext(cache_dir=tmp_path / "cache")


# ----- the front end ------------------------------------------------------------------------------------

def test_read_audio_resamples_to_16k(tmp_path):
    sf.write(tmp_path / "a.wav", tone(0.5, 8000, 200), 8000, subtype="PCM_16")
    wave = features.read_audio(tmp_path / "a.wav")
    assert wave.dtype == np.float32 and abs(len(wave) - 8000) <= 2


def test_level_is_normalised(tmp_path):
    wave = tone(0.5, 16000, 150)
    loud, quiet = features.normalise_level(wave), features.normalise_level(wave * 0.01)
    assert np.allclose(loud, quiet, atol=1e-4)
    sf.write(tmp_path / "loud.wav", wave, 16000, subtype="PCM_16")
    sf.write(tmp_path / "quiet.wav", wave * 0.05, 16000, subtype="PCM_16")
    a, b = features.utterance_features(tmp_path / "loud.wav"), features.utterance_features(tmp_path / "quiet.wav")
    assert a["fbank"].shape == b["fbank"].shape and a["fbank"].shape[1] == features.NUM_MEL
    assert len(a["fbank"]) == (8000 - 400) // 160 + 1  # 25 ms / 10 ms frames fully inside the signal
    voiced = a["energy"] > -20
    low = slice(0, 25)  # the bins the tone fills (below ~1 kHz); above it 16-bit rounding noise differs
    assert np.abs(a["fbank"][voiced][:, low] - b["fbank"][voiced][:, low]).max() < 0.3
    assert a["energy"].max() == 0 and a["energy"].min() < -30  # relative to the peak; the gap is silent


def test_log_mel_back_to_audio_sounds_like_the_frames(tmp_path):
    """Griffin-Lim with the front end's settings: analysing its sound again gives back the log-mel
    (up to the frame alignment), so the inversion matches the forward transform."""
    sf.write(tmp_path / "a.wav", tone(0.5, 16000, 150), 16000, subtype="PCM_16")
    fbank = features.utterance_features(tmp_path / "a.wav")["fbank"]
    state = torch.random.get_rng_state()
    wave = features.log_mel_to_audio(fbank[None])
    assert torch.equal(torch.random.get_rng_state(), state)  # the random phase leaves the global stream alone
    assert wave.shape == (1, (len(fbank) - 1) * 160) and torch.isfinite(wave).all()
    assert torch.equal(wave, features.log_mel_to_audio(fbank[None]))  # the same every time
    sf.write(tmp_path / "back.wav", wave[0].numpy(), features.SAMPLE_RATE)
    again = features.utterance_features(tmp_path / "back.wav")["fbank"]
    n = min(len(again), len(fbank)) - 2  # the sound starts at the middle of the first frame: about 1 frame later
    best = max(np.corrcoef(again[:n].ravel(), fbank[s:s + n].ravel())[0, 1] for s in range(3))
    assert best > 0.9
    silence = features.log_mel_to_audio(np.full((1, 20, 80), np.log(1e-6), np.float32))
    assert silence.abs().max() < 1e-3


def test_unreadable_audio_is_a_clear_error(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(disentangle.DisentangleError, match="bad.wav"):
        features.read_audio(tmp_path / "bad.wav")


def test_window_starts_cover_the_utterance():
    assert corpus.window_starts(10, 20, 5) == [0]
    assert corpus.window_starts(20, 20, 5) == [0]
    assert corpus.window_starts(30, 20, 5) == [0, 5, 10]
    assert corpus.window_starts(33, 20, 10) == [0, 10, 13]
    padded = corpus.pad_to(np.arange(3.0)[:, None], 5, fill_row=1)
    assert padded[:, 0].tolist() == [0, 1, 2, 1, 1]


# ----- fsdd -------------------------------------------------------------------------------------------------

def test_fsdd_on_a_fake_tree(tmp_path):
    root = write_fsdd(tmp_path / "fsdd")
    data = fsdd.FSDD(fsdd.FSDDConfig(root=str(root), seq_len=8, shift=4, test_takes=1), ctx_for(tmp_path))
    testing.check_dataset(data)
    train, test = data.split("train"), data.split("test")
    assert len(train.utterances) == 2 * 3 * 3 and len(test.utterances) == 2 * 3
    assert data.spec.feature_shape == (80,) and data.spec.static_factors == {"speaker": 6}
    item = test[0]
    assert item["x"].shape == (8, 80)
    assert item["meta"]["utterance"] == "0_george_0" and item["meta"]["speaker"] == "george"
    assert item["meta"]["content"] == "0" and item["meta"]["offset"] == 0
    assert item["labels"] == {"speaker": 0, "digit": 0}
    assert set(test.meta["offset"]) > {0}  # several windows per utterance
    x = train.stored_x().reshape(-1, 80)
    assert np.abs(x.mean(0)).max() < 0.2  # normalised with train statistics (padding aside)
    assert train.energy.shape == train.x.shape[:2] and test.utterance_mfcc.shape == (6, 20)
    np.testing.assert_allclose(data.export(torch.from_numpy(train.x[:1]))[0],
                               train.x[0] * data.stats["std"] + data.stats["mean"], rtol=1e-5)
    # the cache is used the second time and gives the same data
    again = fsdd.FSDD(fsdd.FSDDConfig(root=str(root), seq_len=8, shift=4, test_takes=1), ctx_for(tmp_path))
    assert again.fingerprint == data.fingerprint and np.array_equal(again.split("train").x, train.x)
    assert len(list((tmp_path / "cache" / "speech").glob("*.npz"))) == 1


def test_fsdd_validation_split_leaves_the_test_takes_unread(tmp_path):
    root = write_fsdd(tmp_path / "fsdd")
    config = dict(root=str(root), seq_len=8, shift=4)
    usual = fsdd.FSDD(fsdd.FSDDConfig(**config, test_takes=1), ctx_for(tmp_path))
    val = fsdd.FSDD(fsdd.FSDDConfig(**config, first_take=1, test_takes=2), ctx_for(tmp_path))
    assert {u.rsplit("_", 1)[1] for u in val.split("test").utterances} == {"1"}
    assert {u.rsplit("_", 1)[1] for u in val.split("train").utterances} == {"2", "3"}
    # the same files split otherwise are other data: caches keyed on the fingerprint must not mix them
    moved = fsdd.FSDD(fsdd.FSDDConfig(**config, test_takes=2), ctx_for(tmp_path))
    assert len({usual.fingerprint, val.fingerprint, moved.fingerprint}) == 3
    with pytest.raises(disentangle.DisentangleError, match="first_take") as err:
        fsdd.FSDD(fsdd.FSDDConfig(**config, first_take=2, test_takes=2), ctx_for(tmp_path))
    assert "test_takes" in str(err.value)


def test_fsdd_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(disentangle.DisentangleError, match="no recordings") as err:
        fsdd.FSDD(fsdd.FSDDConfig(root=str(tmp_path / "nowhere")), ctx_for(tmp_path))
    assert "data.root" in err.value.hint


@pytest.mark.skipif(not SHARED_FSDD.is_dir(), reason="no shared FSDD copy")
def test_fsdd_shared_copy_subset(tmp_path):
    config = fsdd.FSDDConfig(root=str(SHARED_FSDD), speakers=("jackson", "theo"), max_takes=6, test_takes=2)
    data = fsdd.FSDD(config, ctx_for(tmp_path))
    assert len(data.split("train").utterances) == 2 * 10 * 4 and len(data.split("test").utterances) == 2 * 10 * 2
    assert set(data.split("test").meta["speaker"]) == {"jackson", "theo"}


# ----- codec, volume -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [1, 3])
def test_mel_fbank_codec(tmp_path, kernel):
    ctx = testing.tiny_context(tmp_path, feature_shape=(80,), seq_len=6)
    enc = mel_fbank.MelFbankEncoder(mel_fbank.MelFbankEncoderConfig(hidden=16, out_dim=12, kernel=kernel), ctx)
    dec = mel_fbank.MelFbankDecoder(mel_fbank.MelFbankDecoderConfig(hidden=16, kernel=kernel), ctx)
    testing.check_encoder(enc, ctx)
    testing.check_decoder(dec, ctx)
    assert enc.framewise == (kernel == 1)
    testing.check_config_roundtrip(mel_fbank.MelFbankEncoderConfig())


def test_mel_fbank_rejects_images(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16))
    with pytest.raises(disentangle.DisentangleError, match="feature-vector frames"):
        mel_fbank.MelFbankEncoder(mel_fbank.MelFbankEncoderConfig(), ctx)


def test_voiced_threshold():
    assert volume.voiced(np.array([0.0, -10.0, -29.9, -30.0, -31.0]), 30.0).tolist() == [1, 1, 1, 1, 0]


def test_volume_task_on_fsdd(tmp_path):
    data = fsdd.FSDD(fsdd.FSDDConfig(root=str(write_fsdd(tmp_path / "fsdd")), seq_len=8, shift=4, test_takes=1),
                     ctx_for(tmp_path))
    ctx = testing.tiny_context(tmp_path / "cache", feature_shape=(80,), seq_len=8)
    task = volume.Volume(volume.VolumeConfig(threshold_db=20.0), ctx)
    testing.check_objective(task, ctx, data)
    labels = task.labels.numpy()
    assert labels.shape == data.split("train").energy.shape
    np.testing.assert_array_equal(labels, data.split("train").energy >= -20.0)
    assert 0 < labels.mean() < 1  # the tones have silent gaps
    assert list((tmp_path / "cache" / "volume").glob("*.npy"))


def test_volume_needs_energies(tmp_path):
    ctx = testing.tiny_context(tmp_path, feature_shape=(80,), seq_len=4)
    task = volume.Volume(volume.VolumeConfig(), ctx)
    with pytest.raises(disentangle.DisentangleError, match="frame energies"):
        task.prepare(testing.ToyData(ctx), ctx)


# ----- eer ---------------------------------------------------------------------------------------------------------

def test_eer_known_answers():
    target = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    assert eer.equal_error_rate(np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), target) == 0.0
    assert eer.equal_error_rate(np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), target) == 1.0
    assert eer.equal_error_rate(np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1]), target) == pytest.approx(1 / 3)
    assert eer.equal_error_rate(np.full(6, 0.5), target) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    t = rng.random(20000) < 0.3
    assert eer.equal_error_rate(rng.random(20000), t) == pytest.approx(0.5, abs=0.02)
    # two unit Gaussians 2 sigma apart: EER = Phi(-1) = 15.87%
    s = np.where(t, 1.0, -1.0) + rng.standard_normal(20000)
    assert eer.equal_error_rate(s, t) == pytest.approx(0.1587, abs=0.01)
    with pytest.raises(disentangle.DisentangleError):
        eer.equal_error_rate(np.ones(3), np.ones(3, dtype=bool))


def test_trial_table_separates_content_trials():
    # a speaker code and a content code, on four utterances
    speakers = ["a", "a", "b", "b"]
    contents = ["1", "2", "1", "2"]
    by_speaker = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    by_content = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.05], [0.05, 1.0]])
    table = eer.trial_table({"spk": by_speaker, "con": by_content}, speakers, contents, center=False)
    assert table["trials"] == 6 and table["target_trials"] == 2 and table["content_differs_trials"] == 4
    assert table["eer/spk"] == 0.0 and table["eer/spk/content_differs"] == 0.0
    assert table["eer/con"] >= 0.5 and "eer/con/content_differs" in table
    # content verification, on the 4 pairs of different speakers (2 say the same digit)
    assert table["content_trials"] == 4 and table["content_target_trials"] == 2
    assert table["content-eer/con"] == 0.0 and table["content-eer/spk"] >= 0.5


def test_trial_table_leaves_out_content_eer_when_no_two_speakers_share_content():
    codes = {"c": np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])}
    table = eer.trial_table(codes, ["a", "a", "b"], ["1", "2", "3"], center=False)
    assert "eer/c" in table and "content_trials" not in table and not any(k.startswith("content-eer") for k in table)


def test_eer_metric_groups_windows_by_utterance():
    # 4 utterances of 2 windows each; z_f says the speaker, z_t says nothing
    meta = {"utterance": ["u0", "u0", "u1", "u1", "u2", "u2", "u3", "u3"],
            "speaker": ["a", "a", "a", "a", "b", "b", "b", "b"],
            "content": ["1", "1", "2", "2", "1", "1", "2", "2"]}
    f = np.array([[1, 0], [1, 0.2], [1, -0.1], [1, 0], [0, 1], [0.1, 1], [0, 1], [-0.2, 1]], dtype=np.float32)
    z = np.zeros((8, 3, 2), dtype=np.float32)
    z[:, :, 0] = np.array([1, 1, -1, -1, 1, 1, -1, -1])[:, None]  # the content
    enc = disentangle.Encoded(f=f, z=z, labels={}, meta=meta, recon_sq_err=np.zeros(8), elements=6)
    utts, speaker, content, uf, uz = eer.utterance_codes(enc)
    assert utts == ["u0", "u1", "u2", "u3"] and speaker["u2"] == "b" and content["u1"] == "2"
    np.testing.assert_allclose(uf[0], [1, 0.1])
    table = eer.trial_table({"z_f": uf, "z_t": uz}, [speaker[u] for u in utts], [content[u] for u in utts],
                            center=False)
    assert table["eer/z_f"] == 0.0 and table["eer/z_f/content_differs"] == 0.0
    # z_t matches words: the same-content pairs of different speakers score highest, so on all trials it
    # is worse than chance (2/3: the ROC runs through a tie), and on different-content trials it says
    # nothing about the speaker (50%)
    assert table["eer/z_t"] == pytest.approx(2 / 3) and table["eer/z_t/content_differs"] == 0.5
    # and the other way round: z_t verifies the content across speakers, z_f does not
    assert table["content-eer/z_t"] == 0.0 and table["content-eer/z_f"] >= 0.25


def test_eer_needs_meta():
    enc = disentangle.Encoded(f=np.zeros((2, 2)), z=np.zeros((2, 1, 2)), labels={}, meta={}, recon_sq_err=np.zeros(2), elements=2)
    with pytest.raises(disentangle.DisentangleError, match="meta"):
        eer.utterance_codes(enc)


# ----- timit -------------------------------------------------------------------------------------------------------

def write_timit(root: Path, lower: bool = False) -> Path:
    """A tiny tree in TIMIT's layout: 2 speakers per split, 3 sentences each, NIST SPHERE at 16 kHz."""
    speakers = {"TRAIN": [("DR1", "FCJF0"), ("DR2", "MABC0")], "TEST": [("DR1", "FAKS0"), ("DR3", "MDEF0")]}
    for split, spk in speakers.items():
        for i, (dr, speaker) in enumerate(spk):
            folder = root / split / dr / speaker
            if lower:
                folder = root / split.lower() / dr.lower() / speaker.lower()
            folder.mkdir(parents=True)
            for j, sentence in enumerate(("SA1", "SX10", "SI20")):
                name = sentence.lower() if lower else sentence
                wave = tone(0.3, 16000, 110 + 40 * i + 15 * j, seed=j)
                sf.write(folder / f"{name}.{'wav' if lower else 'WAV'}", wave, 16000, format="NIST", subtype="PCM_16")
                (folder / f"{name}.{'txt' if lower else 'TXT'}").write_text(f"0 4800 Sentence {sentence} here.\n")
    return root


@pytest.mark.parametrize("lower", [False, True])
def test_timit_on_a_fake_tree(tmp_path, lower):
    from disentangle_plugins.speech import timit

    root = write_timit(tmp_path / "TIMIT", lower=lower)
    assert sf.info(str(next(root.rglob("*.[Ww][Aa][Vv]")))).format == "NIST"
    data = timit.Timit(timit.TimitConfig(root=str(root), seq_len=8, shift=8), ctx_for(tmp_path))
    testing.check_dataset(data)
    train, test = data.split("train"), data.split("test")
    assert len(train.utterances) == 6 and len(test.utterances) == 6
    assert test.utterances[0] == "TEST/DR1/FAKS0/SA1"
    item = test[0]
    assert item["meta"]["speaker"] == "FAKS0" and item["meta"]["content"] == "SA1"
    assert item["meta"]["text"] == "Sentence SA1 here." and item["meta"]["dialect"] == "DR1"
    assert item["labels"] == {"sex": 0, "dialect": 0}
    assert set(train.meta["speaker"]).isdisjoint(test.meta["speaker"])  # TIMIT's speaker-disjoint split
    sub = timit.Timit(timit.TimitConfig(root=str(root), seq_len=8, exclude_sa=True, max_speakers=1), ctx_for(tmp_path))
    assert sub.split("test").utterances == ["TEST/DR1/FAKS0/SI20", "TEST/DR1/FAKS0/SX10"]


def test_timit_missing_or_wrong_root_is_a_clear_error(tmp_path, monkeypatch):
    from disentangle_plugins.speech import timit

    monkeypatch.delenv("TIMIT_ROOT", raising=False)
    for root, message in (("", "no data folder"), (str(tmp_path / "nowhere"), "does not exist"),
                          (str(tmp_path), "no TRAIN and TEST")):
        with pytest.raises(disentangle.DisentangleError, match=message) as err:
            timit.Timit(timit.TimitConfig(root=root), ctx_for(tmp_path))
        assert "TRAIN|TEST/DR<n>" in str(err.value) and "build-corpus" in err.value.hint
    monkeypatch.setenv("TIMIT_ROOT", str(write_timit(tmp_path / "env")))
    assert len(timit.Timit(timit.TimitConfig(seq_len=8), ctx_for(tmp_path)).split("test").utterances) == 6


def test_run_timit_recipe_without_data_is_a_clear_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from disentangle.cli import app

    monkeypatch.delenv("TIMIT_ROOT", raising=False)
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "timit.toml"
    result = CliRunner().invoke(app, ["run", str(recipe), "--run-dir", str(tmp_path / "r")])
    assert result.exit_code != 0
    assert "TRAIN|TEST/DR<n>" in result.output and "build-corpus" in result.output
    assert "Traceback" not in result.output


# ----- the stand-in corpus ----------------------------------------------------------------------------------

@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_build_corpus_in_timit_layout(tmp_path):
    from disentangle_plugins.speech import standin, timit

    out = tmp_path / "corpus"
    counts = standin.build_corpus(out, speakers=4, sentences=1, test_every=2, seed=0, progress=False)
    assert counts == {"TRAIN": 6, "TEST": 6}
    wavs = sorted(out.rglob("*.WAV"))
    assert sf.info(str(wavs[0])).format == "NIST" and sf.info(str(wavs[0])).samplerate == 16000
    assert (wavs[0].with_suffix(".TXT")).read_text().split()[2:]  # TIMIT-style "begin end text"
    data = timit.Timit(timit.TimitConfig(root=str(out), seq_len=10), ctx_for(tmp_path))
    assert set(data.split("train").meta["speaker"]).isdisjoint(data.split("test").meta["speaker"])
    with pytest.raises(disentangle.DisentangleError, match="not empty"):
        standin.build_corpus(out, speakers=4, sentences=1, test_every=2, progress=False)
    # deterministic: the same options give the same audio
    again = tmp_path / "again"
    standin.build_corpus(again, speakers=4, sentences=1, test_every=2, seed=0, progress=False)
    assert sf.read(str(wavs[0]))[0].tolist() == sf.read(str(again / wavs[0].relative_to(out)))[0].tolist()


def test_build_corpus_without_espeak_is_a_clear_error(monkeypatch, tmp_path):
    from disentangle_plugins.speech import standin

    monkeypatch.setattr(standin.shutil, "which", lambda name: None)
    with pytest.raises(disentangle.DisentangleError, match="eSpeak NG") as err:
        standin.build_corpus(tmp_path / "c", progress=False)
    assert "apt-get install espeak-ng" in err.value.hint
    assert not (tmp_path / "c").exists()


def test_speech_command_is_registered():
    from typer.testing import CliRunner

    from disentangle.cli import build_app

    result = CliRunner().invoke(build_app(), ["speech", "build-corpus", "--help"])
    assert result.exit_code == 0 and "TIMIT" in result.output


# ----- end to end ----------------------------------------------------------------------------------------------

def test_fsdd_recipe_trains_and_reports_the_eer_table(tmp_path):
    """recipes/fsdd.toml, shrunk, on a fake tree: trains, writes spectrogram pictures and the EER table."""
    from disentangle.recipe import load_recipe

    root = write_fsdd(tmp_path / "fsdd")
    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "fsdd.toml", [
        f"data.root={root}", "data.seq_len=8", "data.shift=4", "data.test_takes=1", "model.z_f_dim=4",
        "model.z_t_dim=2", "model.hidden_dim=8", "model.encoder.hidden=16", "model.encoder.out_dim=16",
        "model.decoder.hidden=16", "train.batch_size=8", "train.max_steps=3", "eval.num_images=4",
        "eval.metrics.1.max_sequences=8"])
    result = disentangle.train(recipe, tmp_path / "run", cache_dir=tmp_path / "cache")
    table = result.eval["eer"]
    assert {"eer/z_f", "eer/z_t", "eer/mfcc", "eer/z_f/content_differs", "eer/mfcc/content_differs",
            "content-eer/z_f", "content-eer/z_t", "content-eer/mfcc"} <= set(table)
    assert table["trials"] == 6 * 5 / 2 and table["target_trials"] == 2 * 3  # 6 test utterances, 3 per speaker
    assert all(0.0 <= v <= 1.0 for k, v in table.items() if k.startswith(("eer/", "content-eer/")))
    images = tmp_path / "run" / "images"
    assert (images / "swap.png").stat().st_size > 100
    # the swaps as sound (Griffin-Lim from log-mel), labelled as an approximation
    wavs = sorted(p.name for p in images.glob("*.wav"))
    assert wavs == sorted(f"swap-{i}{r}-griffin-lim.wav" for i in (0, 1) for r in ("", "-a", "-b"))
    for name in wavs:
        wave, rate = sf.read(images / name)
        assert rate == 16000 and wave.ndim == 1 and len(wave) == (8 - 1) * 160  # one window of T = 8 frames
        assert np.isfinite(wave).all() and np.sqrt(np.mean(wave ** 2)) > 1e-3
    listing = (images / "sounds.txt").read_text()
    assert "Griffin-Lim approximations" in listing
    assert "(utterance " in listing and ", speaker " in listing  # each sound says whose window it is
    assert "<audio controls" in (tmp_path / "run" / "report.html").read_text()
