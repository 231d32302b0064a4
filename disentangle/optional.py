"""Optional dependencies: import a module that only one area needs, or say which extra installs it.

Heavy dependencies that only some plug-ins use (torchaudio and soundfile for speech, ...) are pip
extras of disentangle rather than base dependencies. A plug-in imports them with :func:`require`
where it needs them (in its factory, not at import time), so that a missing extra is a clear
message naming the extra and the command instead of a traceback, and the other plug-ins still load.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from disentangle.errors import DisentangleError


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import and return ``module``; if it is missing or broken, raise a :class:`DisentangleError`
    that names the extra that installs it and the pip command.

    ``purpose`` says what needs it, e.g. ``"the timit dataset"``::

        torchaudio = disentangle.require("torchaudio", extra="speech", purpose="the timit dataset")
    """
    who = purpose or "this component"
    hint = (f'install the "{extra}" extra: pip install "disentangle[{extra}]" '
            f'(from a source checkout: pip install -c constraints.txt -e ".[{extra}]")')
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        root = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != root:  # the module is there; one of ITS imports is not
            raise DisentangleError(f"{who} needs the module '{module}', which fails to import: {exc}",
                                   hint=hint) from exc
        raise DisentangleError(f"{who} needs the module '{module}', which is not installed", hint=hint) from exc
    except ImportError as exc:  # installed but broken (e.g. built against another torch)
        raise DisentangleError(f"{who} needs the module '{module}', which fails to import: {exc}",
                               hint=hint) from exc
