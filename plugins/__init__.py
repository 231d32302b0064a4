"""Built-in plug-ins of disentangle, grouped by area, one module per plug-in, each registered through
a `disentangle` entry point exactly like a third-party plug-in:

- ``video/``: ``conv`` (encoder/decoder), ``flow-grid`` (task), ``moving-shapes`` and ``sprites`` (datasets);
- ``latent/``: ``triplet-scc`` and ``mi-mws`` (regularizers);
- ``evaluation/``: ``latent-metrics`` (metrics).
"""
