"""The execution gateway with its telemetry left to stock ``opentelemetry-instrument``.

``bench.bench_dead_collector`` starts it as::

    opentelemetry-instrument python -m bench.stock_gateway --port N

with ``OTEL_PYTHON_DISTRO=distro`` and ``OTEL_PYTHON_CONFIGURATOR=configurator`` (the stock
ones). It serves the same app as ``python -m services execution-gateway``, built with
``create_app(telemetry_on=False)``: the factory's switch for a caller that owns the SDK, so
``otel.configure()`` never runs and the stock configurator's providers and every installed
contrib instrumentor are what the gateway gets. The trading meters still record, through
whatever global meter provider is set. Logging is set the way ``configure()`` sets it by
default (root at INFO on stdout, httpx/httpcore at WARNING), so both setups write the
same log records.
"""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from services.common.config import ServiceSettings
from services.gateway.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")  # fmt: skip
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    app = create_app(ServiceSettings.from_env(), telemetry_on=False)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
