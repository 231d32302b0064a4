"""The kinds of component: one table, read by the hooks, the registry, recipes and pipeline building.

Adding a kind is one entry in :data:`KINDS` (plus its hookspec in :mod:`disentangle.hookspecs`
and a field of :class:`disentangle.recipe.Recipe` named ``field``).
"""

from __future__ import annotations

import attrs

from disentangle.interfaces import Decoder, Encoder, Metric, Regularizer, SequenceData, Task


@attrs.frozen
class Kind:
    """One kind of component.

    ``path`` is where a recipe holds it (``("model", "encoder")`` is ``[model.encoder]``); a kind
    with ``many`` is an array of tables (``[[tasks]]``), one without is a single required table.
    ``weighted`` kinds take a ``weight`` (λ) beside their parameters; ``field`` is the
    :class:`~disentangle.recipe.Recipe` attribute holding the chosen component(s)."""

    name: str
    hook: str
    path: tuple[str, ...]
    interface: type
    many: bool
    weighted: bool
    field: str

    @property
    def key(self) -> str:
        """The dotted recipe path, e.g. ``model.encoder`` or ``eval.metrics``."""
        return ".".join(self.path)

    @property
    def section(self) -> str:
        """The TOML header, e.g. ``[model.encoder]`` or ``[[tasks]]``."""
        return f"[[{self.key}]]" if self.many else f"[{self.key}]"


#: Every kind, in recipe order.
KINDS: tuple[Kind, ...] = (
    Kind("dataset", "register_datasets", ("data",), SequenceData, many=False, weighted=False, field="data"),
    Kind("encoder", "register_encoders", ("model", "encoder"), Encoder, many=False, weighted=False,
         field="encoder"),
    Kind("decoder", "register_decoders", ("model", "decoder"), Decoder, many=False, weighted=False,
         field="decoder"),
    Kind("task", "register_tasks", ("tasks",), Task, many=True, weighted=True, field="tasks"),
    Kind("regularizer", "register_regularizers", ("regularizers",), Regularizer, many=True, weighted=True,
         field="regularizers"),
    Kind("metric", "register_metrics", ("eval", "metrics"), Metric, many=True, weighted=False,
         field="metrics"),
)

_BY_NAME = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    """The kind called ``name`` (``KeyError`` if there is none)."""
    return _BY_NAME[name]


__all__ = ["KINDS", "Kind", "kind"]
