"""The plug-in hooks of disentangle.

A plug-in is a module (or object) with functions marked ``@disentangle.hookimpl`` whose names are
the hooks below. It is found through the entry-point group ``disentangle``::

    [project.entry-points.disentangle]
    my_plugin = "my_package.plugin"

Each ``register_<kind>s`` hook (one per entry of :data:`disentangle.kinds.KINDS`) is called once,
with a ``register`` callable for one kind of component::

    register(name, factory, *, config=None)

- ``name``: the public name recipes use (``use = "name"``); lower-case words joined by ``-``.
- ``factory``: called as ``factory(config, ctx)`` with the structured config and a
  :class:`disentangle.BuildContext`; returns the component (see :mod:`disentangle.interfaces`).
  A class works as a factory.
- ``config``: the attrs class holding the component's recipe parameters (types, defaults,
  validators). When omitted, ``factory.Config`` is used.

A hook that raises, or registers something invalid, marks its plug-in as failed in
``disentangle list-plugins``; other plug-ins are unaffected.

``register_commands(cli)`` is called by the command line at start-up, after registration, with the
typer app; a plug-in adds its own sub-commands to it.
"""

from __future__ import annotations

import pluggy

PROJECT = "disentangle"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_encoders(register):
    """Register encoders: ``factory(config, ctx) -> disentangle.Encoder``.

    Every context field is set (``ctx.data`` and ``ctx.model`` are the ones encoders need). The encoder maps ``(B, T, *F)`` to
    ``(B, T, out_dim)`` and must set ``out_dim``."""


@hookspec
def register_decoders(register):
    """Register decoders: ``factory(config, ctx) -> disentangle.Decoder``.

    Every context field is set (``ctx.data`` and ``ctx.model`` are the ones decoders need). The decoder maps ``(B, T, ctx.model.latent_dim)`` to
    the parameters of p(x_t | z_f, z_t) and implements ``nll`` and ``mean``."""


@hookspec
def register_tasks(register):
    """Register auxiliary tasks (self-supervision from pseudo-labels):
    ``factory(config, ctx) -> disentangle.Task``. Every context field is set."""


@hookspec
def register_regularizers(register):
    """Register regularizers: ``factory(config, ctx) -> disentangle.Regularizer``.
    Every context field is set (``ctx.dataset_size`` is the training-set size N)."""


@hookspec
def register_datasets(register):
    """Register datasets: ``factory(config, ctx) -> disentangle.SequenceData``.
    Only ``ctx.cache_dir`` and ``ctx.seed`` are set."""


@hookspec
def register_metrics(register):
    """Register evaluation metrics: ``factory(config, ctx) -> disentangle.Metric``."""


@hookspec
def register_commands(cli):
    """Add sub-commands to the ``disentangle`` command line: ``cli`` is its :class:`typer.Typer` app
    (use ``@cli.command()``). Called once at CLI start-up for each plug-in that loaded. A hook that
    raises, or a command whose name the core or an earlier plug-in already uses, is reported on
    stderr and skipped; the rest of the CLI works."""
