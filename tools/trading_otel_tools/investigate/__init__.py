"""``trading-otel investigate``: from an order latency spike to the slow span and its logs.

The entry point for code (the CLI, ``trading-otel demo``, tests) is :func:`investigate`.
"""

from __future__ import annotations

from trading_otel_tools.investigate.core import (
    InvestigateOptions,
    Report,
    TraceReport,
    investigate,
)
from trading_otel_tools.investigate.prom import ExemplarStorageError, PrometheusError
from trading_otel_tools.investigate.render_html import render_html
from trading_otel_tools.investigate.render_json import render_json, report_dict
from trading_otel_tools.investigate.render_text import render_text
from trading_otel_tools.investigate.sources import SourceError

__all__ = [
    "ExemplarStorageError",
    "InvestigateOptions",
    "PrometheusError",
    "Report",
    "SourceError",
    "TraceReport",
    "investigate",
    "render_html",
    "render_json",
    "render_text",
    "report_dict",
]
