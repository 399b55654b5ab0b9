"""``python -m trading_otel_tools.alerts``: the archive receiver, as the local stack runs it.

Same as ``trading-otel alerts receiver``, without the CLI layer: the stack uses this entry
point so that it depends neither on the console script being on PATH nor on typer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trading_otel_tools.alerts.archive import DEFAULT_RETENTION_DAYS, REPORTS_DIR
from trading_otel_tools.alerts.diagnosis import DEFAULT_BUDGET_S, DiagnosisConfig, read_secret_url
from trading_otel_tools.alerts.receiver import serve
from trading_otel_tools.ports import TOOL_PORTS, local_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trading_otel_tools.alerts")
    parser.add_argument(
        "--port", type=int, default=TOOL_PORTS["alert-receiver"], help="listen port"
    )
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--dir", type=Path, default=Path("var/alerts"), help="archive directory")
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS)
    parser.add_argument("--prometheus", default=local_url("prometheus"), help="for diagnoses")
    parser.add_argument("--telemetry-dir", type=Path, default=Path("var/telemetry"))
    parser.add_argument("--tempo", default=None, help="Tempo URL (else the telemetry files)")
    parser.add_argument("--loki", default=None, help="Loki URL (else the telemetry files)")
    parser.add_argument(
        "--grafana", default=None, help="Grafana URL for Explore links (none: no links)"
    )
    parser.add_argument(
        "--report-base-url", default=None,
        help="URL the reports are linked under (default: this receiver's /reports)",
    )  # fmt: skip
    parser.add_argument("--diagnosis-budget", type=float, default=DEFAULT_BUDGET_S, help="seconds")
    parser.add_argument(
        "--chat-webhook-url-file", type=Path, default=None,
        help="file holding a chat incoming-webhook URL; diagnoses are posted there",
    )  # fmt: skip
    parser.add_argument("--no-diagnosis", action="store_true", help="archive only")
    args = parser.parse_args(argv)
    diagnosis = None
    try:
        chat_url = read_secret_url(args.chat_webhook_url_file)
    except ValueError as exc:
        parser.error(str(exc))
    if not args.no_diagnosis:
        diagnosis = DiagnosisConfig(
            prometheus=args.prometheus,
            telemetry_dir=args.telemetry_dir,
            tempo=args.tempo,
            loki=args.loki,
            grafana=args.grafana,
            reports_dir=args.dir / REPORTS_DIR,
            budget_s=args.diagnosis_budget,
            report_base_url=args.report_base_url,
            chat_webhook_url=chat_url,
        )
    return serve(
        args.dir,
        port=args.port,
        host=args.host,
        retention_days=args.retention_days,
        diagnosis=diagnosis,
    )


if __name__ == "__main__":
    sys.exit(main())
