"""trading-otel tooling: the ``trading-otel`` CLI, the local stack, collector build and lint,
the alert receiver and archive, ``investigate``, the signal inventory and the demo.

Not imported by the library (``otel``) or by the services: imports flow
tools -> services -> otel.
"""

from __future__ import annotations

__version__ = "0.1.0"
