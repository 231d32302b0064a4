"""Built-in plug-ins of disentangle, one module per plug-in, registered through the `disentangle` entry points."""
