"""Plug-in discovery, isolation of broken plug-ins, conflicts, disabling."""

import json
import sys
import textwrap

import attrs
import pytest

import disentangle
from disentangle.registry import load_registry

BUILTINS = {"conv", "flow-grid", "triplet-scc", "mi-mws", "moving-shapes", "sprites", "latent-metrics"}


@attrs.frozen
class NoConfig:
    pass


class GoodPlugin:
    @disentangle.hookimpl
    def register_tasks(self, register):
        register("my-task", lambda config, ctx: None, config=NoConfig)


class BrokenPlugin:
    @disentangle.hookimpl
    def register_tasks(self, register):
        raise RuntimeError("boom")


class BadNamePlugin:
    @disentangle.hookimpl
    def register_tasks(self, register):
        register("Bad_Name", lambda c, x: None, config=NoConfig)


def test_builtins_come_from_entry_points():
    reg = load_registry()
    by_name = {p.name: p for p in reg.plugins}
    assert BUILTINS <= set(by_name)
    for name in BUILTINS:
        assert by_name[name].status == "ok", by_name[name].error
        assert by_name[name].distribution == "disentangle"
    assert reg.names("encoder") == ["conv"] or "conv" in reg.names("encoder")
    for kind, name in [("decoder", "conv"), ("task", "flow-grid"), ("regularizer", "triplet-scc"),
                       ("regularizer", "mi-mws"), ("dataset", "moving-shapes"), ("dataset", "sprites")]:
        assert name in reg.names(kind)


def test_broken_plugin_is_recorded_and_others_still_load():
    reg = load_registry(entry_points=False, extra=[("broken", BrokenPlugin()), ("good", GoodPlugin())])
    status = {p.name: p for p in reg.plugins}
    assert status["broken"].status == "error" and "boom" in status["broken"].error
    assert status["good"].status == "ok"
    assert reg.get("task", "my-task").plugin == "good"


def test_invalid_component_name_is_a_plugin_error():
    reg = load_registry(entry_points=False, extra=[("bad", BadNamePlugin())])
    assert reg.plugins[0].status == "error" and "Bad_Name" in reg.plugins[0].error


def test_conflicting_names_raise_naming_both_plugins():
    reg = load_registry(entry_points=False, extra=[("first", GoodPlugin()), ("second", GoodPlugin())])
    with pytest.raises(disentangle.PluginConflictError) as info:
        reg.get("task", "my-task")
    assert "'first'" in str(info.value) and "'second'" in str(info.value)


def test_unknown_component_suggests_the_closest_name():
    reg = load_registry(entry_points=False, extra=[("good", GoodPlugin())])
    with pytest.raises(disentangle.UnknownComponentError, match="did you mean 'my-task'"):
        reg.get("task", "my-tsk")


def _fake_distribution(tmp_path, module_source, ep_name="fake"):
    (tmp_path / "fake_plugin_mod.py").write_text(textwrap.dedent(module_source))
    dist = tmp_path / "fake_plugin-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text(f"[disentangle]\n{ep_name} = fake_plugin_mod\n")


def test_entry_point_that_fails_to_import_is_isolated(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "raise ImportError('needs a missing library')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_plugin_mod", None)
    reg = load_registry()
    fake = next(p for p in reg.plugins if p.name == "fake")
    assert fake.status == "error" and "missing library" in fake.error
    assert fake.distribution == "fake-plugin" and fake.version == "0.3"
    assert "conv" in reg.names("encoder")


def test_disable_env_skips_plugins(monkeypatch):
    monkeypatch.setenv("DISENTANGLE_DISABLE_PLUGINS", "sprites, flow-grid")
    reg = load_registry()
    status = {p.name: p.status for p in reg.plugins}
    assert status["sprites"] == "disabled" and status["flow-grid"] == "disabled"
    assert "sprites" not in reg.names("dataset")


def test_list_plugins_json_shows_broken_third_party_plugin(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import disentangle.registry as registry_module
    from disentangle.cli import app

    _fake_distribution(tmp_path, """
        import disentangle
        @disentangle.hookimpl
        def register_tasks(register):
            raise ValueError("bad registration")
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fake_plugin_mod", None)
    monkeypatch.setattr(registry_module, "_DEFAULT", None)
    result = CliRunner().invoke(app, ["list-plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fake = next(p for p in data["plugins"] if p["name"] == "fake")
    assert fake["status"] == "error" and "bad registration" in fake["error"]
    assert {p["name"] for p in data["plugins"]} >= BUILTINS
    monkeypatch.setattr(registry_module, "_DEFAULT", None)


def test_conflict_blocks_only_the_conflicting_name():
    class Other:
        @disentangle.hookimpl
        def register_regularizers(self, register):
            register("other-reg", lambda c, x: None, config=NoConfig)

    reg = load_registry(entry_points=False, extra=[("a", GoodPlugin()), ("b", GoodPlugin()), ("c", Other())])
    assert reg.get("regularizer", "other-reg").plugin == "c"
    with pytest.raises(disentangle.PluginConflictError):
        reg.get("task", "my-task")


def test_misspelt_hook_name_is_a_plugin_error():
    class Misspelt:
        @disentangle.hookimpl
        def register_task(self, register):  # should be register_tasks
            register("x", lambda c, x: None, config=NoConfig)

    reg = load_registry(entry_points=False, extra=[("misspelt", Misspelt())])
    assert reg.plugins[0].status == "error" and "register_task" in reg.plugins[0].error


@pytest.mark.parametrize("field", ["weight", "use"])
def test_config_fields_the_core_reads_are_rejected(field):
    Config = attrs.make_class("Config", {field: attrs.field(default=1.0)}, frozen=True)

    class Shadowing:
        @disentangle.hookimpl
        def register_tasks(self, register):
            register("shadow", lambda c, x: None, config=Config)

    reg = load_registry(entry_points=False, extra=[("shadowing", Shadowing())])
    assert reg.plugins[0].status == "error" and "reserved" in reg.plugins[0].error


def test_kind_table_drives_the_hooks():
    from disentangle import hookspecs
    from disentangle.kinds import KINDS

    specs = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert {k.hook for k in KINDS} | {"register_commands"} == specs
    assert [k.name for k in KINDS] == ["dataset", "encoder", "decoder", "task", "regularizer", "metric"]


def test_conflict_shows_on_both_plugins():
    reg = load_registry(entry_points=False, extra=[("first", GoodPlugin()), ("second", GoodPlugin())])
    status = {p.name: p for p in reg.plugins}
    assert status["second"].status == "conflict" and status["first"].status == "conflict"
    assert "'first'" in status["second"].conflicts[0] and "'second'" in status["second"].conflicts[0]
    assert status["second"].to_dict()["conflicts"] == status["second"].conflicts


def test_unknown_name_of_a_failed_plugin_names_it_and_its_error():
    class HalfBroken:
        @disentangle.hookimpl
        def register_tasks(self, register):
            register("half-task", lambda c, x: None, config=NoConfig)

        @disentangle.hookimpl
        def register_regularizers(self, register):
            raise RuntimeError("boom in regularizers")

    reg = load_registry(entry_points=False, extra=[("half", HalfBroken()), ("broken", BrokenPlugin())])
    with pytest.raises(disentangle.UnknownComponentError) as exact:
        reg.get("task", "half-task")
    assert "plug-in 'half'" in exact.value.message and "boom in regularizers" in exact.value.message
    with pytest.raises(disentangle.UnknownComponentError) as maybe:
        reg.get("task", "other-task")  # 'broken' failed before registering anything: a possible provider
    assert "'broken' failed to load (RuntimeError: boom)" in maybe.value.message


def test_unknown_name_mentions_disabled_plugins(monkeypatch):
    monkeypatch.setenv("DISENTANGLE_DISABLE_PLUGINS", "flow-grid")
    reg = load_registry()
    with pytest.raises(disentangle.UnknownComponentError) as info:
        reg.get("task", "flow-grid")
    assert "'flow-grid' is disabled by DISENTANGLE_DISABLE_PLUGINS" in info.value.message
    assert reg.warnings == []


def test_unknown_disabled_name_warns(monkeypatch, capsys):
    import disentangle.registry as registry_module

    monkeypatch.setenv("DISENTANGLE_DISABLE_PLUGINS", "flow-gird, sprites")
    reg = load_registry()
    assert len(reg.warnings) == 1
    assert "'flow-gird'" in reg.warnings[0] and "did you mean 'flow-grid'" in reg.warnings[0]
    assert "conv" in reg.warnings[0]  # lists the known plug-ins
    monkeypatch.setattr(registry_module, "_DEFAULT", None)
    registry_module.get_registry()
    assert "flow-gird" in capsys.readouterr().err
    monkeypatch.setattr(registry_module, "_DEFAULT", None)


def test_later_hooks_are_called_per_plugin_in_isolation():
    class Commands:
        @disentangle.hookimpl
        def register_commands(self, cli):
            cli.append("added")

    class BrokenCommands:
        @disentangle.hookimpl
        def register_commands(self, cli):
            raise RuntimeError("no commands")

    reg = load_registry(entry_points=False,
                        extra=[("bad", BrokenCommands()), ("good", Commands()), ("tasks", GoodPlugin())])
    seen: list[str] = []
    failures = reg.call("register_commands", cli=seen)
    assert seen == ["added"]
    assert [(name, str(exc)) for name, exc in failures] == [("bad", "no commands")]
