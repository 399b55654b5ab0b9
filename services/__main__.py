"""Run one service: ``python -m services <name> [--port N] [--host H]``.

Names and default ports follow docs/local-stack.md. ``OTEL_SERVICE_NAME`` defaults to the
service's name; everything else comes from the environment (see docs/services.md).

A bad risk or limit setting stops the process before it binds its port: one message on
stderr naming the variable and the value, and the exit status ``EX_CONFIG`` (78).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from services.common.config import EX_CONFIG, ServiceSettings, SettingsError
from services.common.ports import SERVICE_PORTS

#: name -> (default port, import path of its app factory)
_APPS: dict[str, str] = {
    "orchestrator": "services.orchestrator.app",
    "execution-gateway": "services.gateway.app",
    "signal-service": "services.signals.app",
    "market-data": "services.marketdata.app",
    "broker-simulator": "services.broker.app",
}
SERVICES: dict[str, tuple[int, str]] = {name: (SERVICE_PORTS[name], _APPS[name]) for name in _APPS}


def _factory(name: str) -> Callable[[ServiceSettings], FastAPI]:
    import importlib

    module = importlib.import_module(SERVICES[name][1])
    factory: Callable[[ServiceSettings], FastAPI] = module.create_app
    return factory


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services", description=__doc__)
    parser.add_argument("name", choices=sorted(SERVICES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    port = args.port or SERVICES[args.name][0]
    os.environ.setdefault("OTEL_SERVICE_NAME", args.name)
    # Read before uvicorn binds the port or runs the lifespan: a refused limit never
    # serves a request nor reports ready, and the user gets one line, not a traceback.
    try:
        settings = ServiceSettings.from_env()
    except SettingsError as exc:
        print(f"{args.name}: refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None
    app = _factory(args.name)(settings)
    if args.name == "broker-simulator":
        from services.broker.server import BrokerServer

        server = BrokerServer(app, settings, args.host, port)
        asyncio.run(server.serve())
        return
    uvicorn.run(app, host=args.host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
