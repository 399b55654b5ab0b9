"""``python -m trading_otel_tools.alerts``: the archive receiver, as the local stack runs it.

Same as ``trading-otel alerts receiver``; the stack uses this entry point so that it does
not depend on the console script being on PATH.
"""

from __future__ import annotations

import typer

from trading_otel_tools.cli.alerts import receiver_cmd

if __name__ == "__main__":
    typer.run(receiver_cmd)
