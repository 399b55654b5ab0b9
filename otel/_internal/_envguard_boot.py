"""Run the environment guard at interpreter start, without importing ``otel`` or the SDK.

Installed as the top-level module ``_trading_otel_envguard_boot`` and imported by
``_trading_otel_envguard.pth`` only when some ``OTEL_*`` variable is set. It loads
``otel/_internal/envguard.py`` by path under its own name, so a later ``import otel``
reuses it (and its run-once flag). It never raises: a ``.pth`` error would be printed
at every interpreter start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys


def _run() -> None:
    name = "otel._internal.envguard"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec("otel")
    if spec is None or not spec.submodule_search_locations:
        return
    path = os.path.join(next(iter(spec.submodule_search_locations)), "_internal", "envguard.py")
    if not os.path.isfile(path):  # another checkout of otel without the guard
        return
    guard_spec = importlib.util.spec_from_file_location(name, path)
    if guard_spec is None or guard_spec.loader is None:
        return
    module = importlib.util.module_from_spec(guard_spec)
    sys.modules[name] = module
    try:
        guard_spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    module.guard()


with contextlib.suppress(Exception):  # never break interpreter start
    _run()
