"""Verified caches: a record beside each cached array, checked on open; damage is named and rebuilt."""

import numpy as np
import pytest

from disentangle.io import cached_array, read_record, record_path, verify_array


def _compute(calls):
    def compute():
        calls.append(1)
        return np.arange(24000, dtype=np.int16).reshape(1000, 24)
    return compute


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(p.read_bytes()[:1000]), "truncated"),
    (lambda p: np.save(p, np.random.RandomState(0).randint(0, 9, (1000, 24)).astype(np.int16)), "differs"),
    (lambda p: np.save(p, np.zeros((1000, 24), np.float32)), "expected int16 (1000, 24)"),
    (lambda p: record_path(p).unlink(), "has no record"),
])
def test_a_damaged_cache_entry_is_named_and_rebuilt(tmp_path, capsys, damage, reason):
    path = tmp_path / "labels" / "key.npy"
    calls = []
    first = cached_array(path, _compute(calls), sources="key")
    assert read_record(path)["shape"] == [1000, 24] and len(calls) == 1
    assert cached_array(path, _compute(calls), sources="key") is not None and len(calls) == 1  # reused
    damage(path)
    again = cached_array(path, _compute(calls), sources="key")
    assert len(calls) == 2
    np.testing.assert_array_equal(again, first)
    err = " ".join(capsys.readouterr().err.split())
    assert f"cache {path}" in err and reason in err and "rebuilding" in err
    assert verify_array(path, read_record(path), "key", full=True) is None


def test_an_entry_made_from_other_sources_is_rebuilt(tmp_path):
    path, calls = tmp_path / "key.npy", []
    cached_array(path, _compute(calls), sources="a")
    assert verify_array(path, read_record(path), "b") == "was made from other sources"
    cached_array(path, _compute(calls), sources="b")
    assert len(calls) == 2


def test_cache_list_verify_clear(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from disentangle import cli
    from disentangle.cli import app
    from disentangle.io import default_cache_dir

    runner = CliRunner()
    monkeypatch.setattr(cli.out, "width", 400)  # one table row per line
    cache = default_cache_dir()  # the test's own folder (conftest)
    good, bad = cache / "flow-grid" / "a.npy", cache / "flow-grid" / "b.npy"
    for path in (good, bad):
        cached_array(path, _compute([]), sources=path.stem)
    raw = bytearray(bad.read_bytes())
    raw[-5000:] = bytes(5000)  # damage the end only: the sampled check sees it, so does the full one
    bad.write_bytes(bytes(raw))
    (cache / "flow-grid" / ".c.npy.x1.tmp").write_bytes(b"left by a kill")
    listed = runner.invoke(app, ["cache", "list"], terminal_width=300)
    assert listed.exit_code == 0 and "differs from what was written" in listed.output
    assert "left by a killed writer" in listed.output and str(good) in listed.output
    verified = runner.invoke(app, ["cache", "verify"], terminal_width=300)
    assert verified.exit_code == 1 and "cache clear --damaged" in " ".join(verified.output.split())
    cleared = runner.invoke(app, ["cache", "clear", "--damaged"], terminal_width=300)
    assert cleared.exit_code == 0, cleared.output
    assert good.exists() and not bad.exists() and not record_path(bad).exists()
    assert not (cache / "flow-grid" / ".c.npy.x1.tmp").exists()
    assert runner.invoke(app, ["cache", "verify"]).exit_code == 0
    assert runner.invoke(app, ["cache", "clear", str(tmp_path / "elsewhere")]).exit_code == 1


def test_numpys_eof_error_is_a_message_not_aborted(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import disentangle.training as training
    from disentangle.cli import app

    def truncated(*args, **kwargs):
        raise EOFError("No data left in file")

    monkeypatch.setattr(training, "load_run", truncated)
    result = CliRunner().invoke(app, ["sample", str(tmp_path)])
    assert result.exit_code == 1 and "Aborted" not in result.output
    assert "ended early" in result.output and "cache verify" in result.output
