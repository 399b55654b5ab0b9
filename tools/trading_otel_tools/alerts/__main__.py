"""``python -m trading_otel_tools.alerts``: the archive receiver, as the local stack runs it.

Same as ``trading-otel alerts receiver``, without the CLI layer: the stack uses this entry
point so that it depends neither on the console script being on PATH nor on typer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trading_otel_tools.alerts.archive import DEFAULT_RETENTION_DAYS
from trading_otel_tools.alerts.receiver import serve
from trading_otel_tools.ports import TOOL_PORTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trading_otel_tools.alerts")
    parser.add_argument(
        "--port", type=int, default=TOOL_PORTS["alert-receiver"], help="listen port"
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--dir", type=Path, default=Path("var/alerts"), help="archive directory")
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS)
    args = parser.parse_args(argv)
    return serve(args.dir, port=args.port, host=args.host, retention_days=args.retention_days)


if __name__ == "__main__":
    sys.exit(main())
