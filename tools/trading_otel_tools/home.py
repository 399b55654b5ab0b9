"""Where the tooling finds the checkout's data: one declared place.

The checkout (collector configs and manifest, ``deploy/``, ``docs/runbooks``, the
services, ``bin/`` and ``var/``) is, in order:

1. the directory given with ``trading-otel --repo DIR`` (:func:`set_home`);
2. ``$TRADING_OTEL_HOME``;
3. the nearest directory, from the current one upwards, that holds :data:`MARKER`.

Commands that also make sense outside a checkout (``collector lint`` on your own
configs, ``investigate`` against your own backends) take explicit paths and fall back to
the copies shipped as package data (:func:`data_file`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

ENV_VAR = "TRADING_OTEL_HOME"
#: A directory holding this file (relative) is a trading-otel checkout.
MARKER = Path("collector") / "manifest.yaml"
_PACKAGE_DATA = Path(__file__).resolve().parent / "_data"

_override: Path | None = None


class HomeNotFound(RuntimeError):
    """No trading-otel checkout was given or found."""


def set_home(path: Path | None) -> None:
    """Use ``path`` as the checkout for the rest of this process (``--repo``)."""
    global _override
    _override = None if path is None else path.expanduser().resolve()


def find_home(start: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The checkout by the rules above, or None when there is none."""
    env = os.environ if environ is None else environ
    if _override is not None:
        return _override
    if env.get(ENV_VAR):
        return Path(env[ENV_VAR]).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MARKER).is_file():
            return candidate
    return None


def repo_root() -> Path:
    """The checkout; raises :class:`HomeNotFound` with what to do when there is none."""
    root = find_home()
    if root is None:
        raise HomeNotFound(
            f"no trading-otel checkout here: run from inside one, or pass --repo DIR or "
            f"set {ENV_VAR} (a checkout holds {MARKER})"
        )
    if not (root / MARKER).is_file():
        raise HomeNotFound(f"{root} is not a trading-otel checkout: {MARKER} is missing")
    return root


def path(*parts: str) -> Path:
    """A path inside the checkout (``path("deploy", "prometheus")``)."""
    return repo_root().joinpath(*parts)


def data_file(relative: str) -> Path:
    """``relative`` in the checkout when there is one, else the copy shipped in the wheel."""
    root = find_home()
    if root is not None and (root / relative).exists():
        return root / relative
    shipped = _PACKAGE_DATA / relative
    if shipped.exists():
        return shipped
    return repo_root() / relative


class Checkout:
    """The data paths of one checkout; every tooling module reads them from here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.deploy = root / "deploy"
        self.rules_dir = self.deploy / "prometheus" / "rules"
        self.promtool_tests = self.deploy / "prometheus" / "tests"
        self.prometheus_local = self.deploy / "prometheus" / "prometheus.local.yml"
        self.alertmanager_local = self.deploy / "alertmanager" / "alertmanager.local.yml"
        self.dashboards = self.deploy / "grafana" / "dashboards"
        self.datasources = (
            self.deploy / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
        )
        self.compose_dir = self.deploy / "compose"
        self.k8s_dir = self.deploy / "k8s"
        self.runbooks = root / "docs" / "runbooks"
        self.alerting_doc = root / "docs" / "alerting.md"
        self.collector_config = root / "collector" / "config"
        self.recorder_config = root / "collector" / "fixtures" / "recorder.yaml"
        self.manifest = root / MARKER
        self.binary = root / "bin" / "otelcol-trading"
        self.var = root / "var"
        self.scripts = root / "scripts"
        self.inventory = root / "tests" / "fixtures" / "signal_inventory.json"


def checkout() -> Checkout:
    """The paths of :func:`repo_root`; raises :class:`HomeNotFound` when there is none."""
    return Checkout(repo_root())


def checkout_module(name: str) -> ModuleType:
    """Import ``name`` from the checkout's demo services, which no wheel ships.

    Imported when a command needs it, never with a tooling module, so commands that work
    outside a checkout (``--help``, ``collector lint``, ``investigate``) never need them.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name.split(".", 1)[0]:
            raise
    sys.path.insert(0, str(repo_root()))
    return importlib.import_module(name)
