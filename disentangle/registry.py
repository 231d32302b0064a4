"""The component registry, filled by plug-ins loaded from the ``disentangle`` entry points."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import sys
from typing import Any, Callable, Iterable

import attrs
import pluggy

from disentangle import hookspecs
from disentangle.errors import PluginConflictError, UnknownComponentError, did_you_mean
from disentangle.kinds import KINDS as KIND_TABLE

ENTRY_POINT_GROUP = "disentangle"
DISABLE_ENV = "DISENTANGLE_DISABLE_PLUGINS"

#: kind -> the hook that registers it (derived from :data:`disentangle.kinds.KINDS`).
KINDS: dict[str, str] = {k.name: k.hook for k in KIND_TABLE}
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
#: Keys the core reads from a component's recipe table itself; configs may not use them.
RESERVED_KEYS = ("use", "weight", "weight_warmup")
#: Names of the core's own loss columns in metrics.jsonl; objectives may not take them.
RESERVED_NAMES = ("loss", "vae", "recon", "kl_f", "kl_z", "grad_norm", "step", "epoch")


@attrs.frozen
class Component:
    """A registered component: its public name, config class and factory."""

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type
    plugin: str

    def build(self, config: Any, ctx: Any) -> Any:
        return self.factory(config, ctx)


@attrs.define
class PluginInfo:
    """One plug-in as seen by ``disentangle list-plugins``."""

    name: str
    distribution: str | None = None
    version: str | None = None
    components: dict[str, list[str]] = attrs.field(factory=dict)
    status: str = "ok"  # ok | error | disabled | conflict
    error: str | None = None
    #: Names this plug-in registers that another plug-in registers too (unusable until resolved).
    conflicts: list[str] = attrs.field(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Registry:
    """Components by (kind, name), the plug-ins they came from, and any name conflicts."""

    def __init__(self) -> None:
        self.components: dict[tuple[str, str], Component] = {}
        self.plugins: list[PluginInfo] = []
        self.conflicts: list[str] = []
        #: Problems found while loading that are no plug-in's fault (e.g. an unknown disabled name).
        self.warnings: list[str] = []
        #: One pluggy manager per plug-in that loaded, so later hooks (``register_commands``) can be
        #: called on each plug-in on its own.
        self.managers: dict[str, pluggy.PluginManager] = {}
        self._conflicted: set[tuple[str, str]] = set()
        #: (kind, name) -> why a failed plug-in that registered it could not provide it.
        self._unavailable: dict[tuple[str, str], str] = {}

    def names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.components if k == kind)

    def get(self, kind: str, name: str) -> Component:
        """The component, or an :class:`UnknownComponentError` with a did-you-mean; a name that two
        plug-ins register raises :class:`PluginConflictError` (other names stay usable)."""
        if (kind, name) in self._conflicted:
            self.check(kind, name)
        try:
            return self.components[(kind, name)]
        except KeyError:
            raise self._unknown(kind, name) from None

    def _unknown(self, kind: str, name: str) -> UnknownComponentError:
        """Name the plug-in that would provide ``name`` and why it cannot, where that is known."""
        hint = "`disentangle list-plugins` shows what is installed and what failed to load"
        if (kind, name) in self._unavailable:
            return UnknownComponentError(f"{kind} '{name}' is unavailable: {self._unavailable[(kind, name)]}",
                                         hint=f"fix or reinstall that plug-in; {hint}")
        known = self.names(kind)
        message = f"unknown {kind} '{name}'{did_you_mean(name, known)}; available: {', '.join(known) or 'none'}"
        maybe = [f"plug-in '{p.name}' failed to load ({p.error})" for p in self.plugins if p.status == "error"]
        maybe += [f"plug-in '{p.name}' is disabled by {DISABLE_ENV}" for p in self.plugins
                  if p.status == "disabled"]
        if maybe:
            message += "; it may be provided by a plug-in that is unavailable: " + "; ".join(maybe)
        return UnknownComponentError(message, hint=hint)

    def call(self, hook: str, **kwargs: Any) -> list[tuple[str, BaseException]]:
        """Call ``hook`` on each loaded plug-in on its own; ``[(plug-in, exception), ...]`` for those
        whose hook raised (the others are unaffected)."""
        failures: list[tuple[str, BaseException]] = []
        for name, pm in self.managers.items():
            try:
                getattr(pm.hook, hook)(**kwargs)
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                failures.append((name, exc))
        return failures

    def check(self, kind: str | None = None, name: str | None = None) -> None:
        """Raise :class:`PluginConflictError` if two plug-ins register the same name (this one, if given)."""
        found = [c for c in self.conflicts if kind is None or c.startswith(f"{kind} '{name}' ")]
        if found:
            raise PluginConflictError(
                "; ".join(found),
                hint=f"uninstall one of them or set {DISABLE_ENV}=<plug-in name>",
            )

    def add_plugin(self, plugin: object, name: str, distribution: str | None = None,
                   version: str | None = None) -> PluginInfo:
        """Register one plug-in object/module: call its hooks, record what it registers.

        A failure marks this plug-in as ``error`` and registers none of its components."""
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self.plugins.append(info)
        staged: list[Component] = []
        try:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            pm.register(plugin, name=name)
            pm.check_pending()  # a misspelt hook name (register_task) is an error, not silence
            for k in KIND_TABLE:
                getattr(pm.hook, k.hook)(register=_registrar(k.name, name, staged))
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            info.status = "error"
            info.error = f"{type(exc).__name__}: {exc}"
            for comp in staged:  # what it registered before failing: known to be unavailable
                self._unavailable.setdefault(
                    (comp.kind, comp.name), f"it is registered by plug-in '{name}', which failed to load ({info.error})")
            return info
        self.managers[name] = pm
        for comp in staged:
            key = (comp.kind, comp.name)
            if key in self.components:
                other = self.components[key].plugin
                conflict = (f"{comp.kind} '{comp.name}' is registered by both plug-in '{other}' "
                            f"({self._dist(other)}) and plug-in '{name}' ({distribution or 'not installed'})")
                self.conflicts.append(conflict)
                self._conflicted.add(key)
                for plugin_info in (info, self._info(other)):
                    if plugin_info is not None:
                        plugin_info.status = "conflict"
                        plugin_info.conflicts.append(conflict)
                continue
            self.components[key] = comp
            info.components.setdefault(comp.kind, []).append(comp.name)
        return info

    def _info(self, plugin: str) -> PluginInfo | None:
        return next((info for info in self.plugins if info.name == plugin), None)

    def _dist(self, plugin: str) -> str:
        for info in self.plugins:
            if info.name == plugin:
                return info.distribution or "not installed"
        return "unknown"


def _registrar(kind: str, plugin: str, staged: list[Component]) -> Callable[..., None]:
    def register(name: str, factory: Callable[..., Any], *, config: type | None = None) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{kind} name {name!r} must be lower-case words joined by '-'")
        cfg = config if config is not None else getattr(factory, "Config", None)
        if cfg is None or not attrs.has(cfg):
            raise TypeError(
                f"{kind} '{name}': config must be an attrs class (pass config=... or set factory.Config)"
            )
        clash = [k for k in RESERVED_KEYS if k in attrs.fields_dict(cfg)]
        if clash:
            raise TypeError(f"{kind} '{name}': config field(s) {clash} are reserved (the core reads 'use', "
                            "'weight' and 'weight_warmup' from the recipe table itself); rename them")
        if name in RESERVED_NAMES:
            raise ValueError(f"{kind} name '{name}' is reserved for the core's loss columns")
        if not callable(factory):
            raise TypeError(f"{kind} '{name}': factory is not callable")
        if any(c.kind == kind and c.name == name for c in staged):
            raise ValueError(f"{kind} '{name}' registered twice by the same plug-in")
        staged.append(Component(kind=kind, name=name, factory=factory, config=cfg, plugin=plugin))

    return register


def disabled_plugins() -> set[str]:
    """The plug-in names listed in ``DISENTANGLE_DISABLE_PLUGINS``."""
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def load_registry(*, entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()) -> Registry:
    """Load every plug-in of the ``disentangle`` entry-point group, each on its own.

    ``extra`` adds ``(name, plugin_object)`` pairs, e.g. from tests."""
    reg = Registry()
    disabled = disabled_plugins()
    extra = list(extra)
    if entry_points:
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        known = sorted({ep.name for ep in eps} | {name for name, _ in extra})
        for unknown in sorted(disabled - set(known)):
            reg.warnings.append(f"{DISABLE_ENV} names '{unknown}', which is no installed plug-in"
                                f"{did_you_mean(unknown, known)}; plug-ins: {', '.join(known) or 'none'}")
        for ep in eps:
            dist = getattr(ep, "dist", None)
            dname = dist.metadata["Name"] if dist is not None else None
            dver = dist.version if dist is not None else None
            if ep.name in disabled:
                reg.plugins.append(PluginInfo(ep.name, dname, dver, status="disabled"))
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001
                reg.plugins.append(PluginInfo(ep.name, dname, dver, status="error",
                                              error=f"{type(exc).__name__}: {exc}"))
                continue
            reg.add_plugin(obj, ep.name, dname, dver)
    for name, obj in extra:
        if name in disabled:
            reg.plugins.append(PluginInfo(name, status="disabled"))
        else:
            reg.add_plugin(obj, name)
    return reg


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry of installed plug-ins (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_registry()
        for warning in _DEFAULT.warnings:
            print(f"warning: {warning}", file=sys.stderr)
    return _DEFAULT
