"""trading-otel tooling: the ``trading-otel`` CLI, the local stack, collector build and lint,
the alert receiver and archive, ``investigate``, the signal inventory and the demo.

Not imported by the library (``otel``) or by the services: imports flow
tools -> services -> otel.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    #: The installed distribution's version, which is the library's (tools/hatch_build.py).
    __version__ = version("trading-otel-tools")
except PackageNotFoundError:  # run from a checkout without installing
    __version__ = "0+unknown"
