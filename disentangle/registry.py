"""The component registry, filled by plug-ins loaded from the ``disentangle`` entry points."""

from __future__ import annotations

import importlib.metadata as md
import os
import re
from typing import Any, Callable, Iterable

import attrs
import pluggy

from disentangle import hookspecs
from disentangle.errors import PluginConflictError, UnknownComponentError, did_you_mean

ENTRY_POINT_GROUP = "disentangle"
DISABLE_ENV = "DISENTANGLE_DISABLE_PLUGINS"

#: kind -> the hook that registers it.
KINDS: dict[str, str] = {
    "encoder": "register_encoders",
    "decoder": "register_decoders",
    "task": "register_tasks",
    "regularizer": "register_regularizers",
    "dataset": "register_datasets",
    "metric": "register_metrics",
}
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
#: Keys the core reads from a component's recipe table itself; configs may not use them.
RESERVED_KEYS = ("use", "weight")
#: Names of the core's own loss columns in metrics.jsonl; objectives may not take them.
RESERVED_NAMES = ("loss", "vae", "recon", "step", "epoch")


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
    status: str = "ok"  # ok | error | disabled
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class Registry:
    """Components by (kind, name), the plug-ins they came from, and any name conflicts."""

    def __init__(self) -> None:
        self.components: dict[tuple[str, str], Component] = {}
        self.plugins: list[PluginInfo] = []
        self.conflicts: list[str] = []
        self._conflicted: set[tuple[str, str]] = set()

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
            known = self.names(kind)
            raise UnknownComponentError(
                f"unknown {kind} '{name}'{did_you_mean(name, known)}; "
                f"available: {', '.join(known) or 'none'}",
                hint="`disentangle list-plugins` shows what is installed and what failed to load",
            ) from None

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
            for kind, hook in KINDS.items():
                getattr(pm.hook, hook)(register=_registrar(kind, name, staged))
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            info.status = "error"
            info.error = f"{type(exc).__name__}: {exc}"
            return info
        for comp in staged:
            key = (comp.kind, comp.name)
            if key in self.components:
                other = self.components[key].plugin
                self.conflicts.append(
                    f"{comp.kind} '{comp.name}' is registered by both plug-in '{other}' "
                    f"({self._dist(other)}) and plug-in '{name}' ({distribution or 'not installed'})"
                )
                self._conflicted.add(key)
                continue
            self.components[key] = comp
            info.components.setdefault(comp.kind, []).append(comp.name)
        return info

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
            raise TypeError(f"{kind} '{name}': config field(s) {clash} are reserved (the core reads 'use' and "
                            "'weight' from the recipe table itself); rename them")
        if name in RESERVED_NAMES:
            raise ValueError(f"{kind} name '{name}' is reserved for the core's loss columns")
        if not callable(factory):
            raise TypeError(f"{kind} '{name}': factory is not callable")
        if any(c.kind == kind and c.name == name for c in staged):
            raise ValueError(f"{kind} '{name}' registered twice by the same plug-in")
        staged.append(Component(kind=kind, name=name, factory=factory, config=cfg, plugin=plugin))

    return register


def disabled_plugins() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def load_registry(*, entry_points: bool = True, extra: Iterable[tuple[str, object]] = ()) -> Registry:
    """Load every plug-in of the ``disentangle`` entry-point group, each on its own.

    ``extra`` adds ``(name, plugin_object)`` pairs, e.g. from tests."""
    reg = Registry()
    disabled = disabled_plugins()
    if entry_points:
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
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
    return _DEFAULT
