"""Read the environment once, into a frozen :class:`Settings`.

Fail-open is the rule: a bad value never raises. It logs exactly one warning that names
the variable and the value, and the default applies. When the environ read is
``os.environ`` itself, a rejected value is also removed from it (a list is rewritten
without its bad entries), so the SDK exporters, which re-read some of these variables
(the gRPC ones parse their timeout with ``float()``), never see it, and a second
``from_env`` does not warn again.

The variables only OpenTelemetry's own code reads (headers, compression, certificates,
limits, propagators...) are checked by :mod:`otel._internal.envguard`, before the SDK is
imported; each variable is validated in exactly one of the two places.

Every variable read here is declared once, in the table of :mod:`otel._internal.variables`.
``from_env`` parses from that table (the OTLP variables in :mod:`otel._internal.otlp_settings`;
sampler-argument, excluded-URL and resource-attribute variables through small parsers of
their own, which still take names and defaults from it).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

from otel._internal.env_reader import Reader, ascii_only, split_list, valid_regex
from otel._internal.otlp_settings import SIGNALS, SignalExport, signal_export
from otel._internal.variables import BY_FIELD, VARIABLES, EnvVar

_log = logging.getLogger("otel.config")
T = TypeVar("T")

LogFormat = Literal["auto", "json", "console"]


def _parse_resource_attributes(reader: Reader) -> dict[str, str]:
    """Parse OTEL_RESOURCE_ATTRIBUTES (``k=v,k2=v2``, percent-encoded values)."""
    name = BY_FIELD["resource_attributes"].env
    value = reader.raw(name)
    attrs: dict[str, str] = {}
    if value is None:
        return attrs
    bad: list[str] = []
    good: list[str] = []
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, val = pair.partition("=")
        if not sep or not key.strip():
            bad.append(pair)
            continue
        good.append(pair)
        attrs[key.strip()] = unquote(val.strip())
    if bad:
        reader.bad(
            name,
            value,
            f"malformed pair {bad[0]!r}",
            "skip it",
            ",".join(good) or None,
        )
    return attrs


def _default(field: str) -> Any:
    return BY_FIELD[field].default


def _read(r: Reader, v: EnvVar) -> Any:
    """Parse one variable that has no dedicated parser."""
    if v.kind == "text":
        return r.raw(v.env) or v.default
    if v.kind == "boolean":
        return r.boolean(v.env, v.default)
    if v.kind == "integer":
        return r.integer(v.env, v.default, minimum=int(v.low), maximum=int(v.high))
    if v.kind == "number":
        return r.number(v.env, v.default, minimum=v.low, maximum=v.high)
    if v.kind == "choice":
        value = r.choice(v.env, v.default.lower(), v.allowed)
        return value.upper() if v.case == "upper" else value
    if v.kind == "exporters":
        return r.names(v.env, v.default, frozenset(v.allowed))
    if v.kind == "list":
        items = split_list(r.raw(v.env))
        if v.case:
            items = tuple(p.upper() if v.case == "upper" else p.lower() for p in items)
        kept = type(v.default)(dict.fromkeys(items))  # frozenset or tuple, duplicates dropped
        return kept or v.default
    raise AssertionError(f"{v.env}: {v.kind} needs a dedicated parser")


@dataclass(frozen=True)
class Settings:
    """Everything trading-otel reads from the environment, parsed once.

    Build it with :meth:`from_env`; tests pass a plain dict instead of patching
    ``os.environ``. Every field has a default (from :data:`VARIABLES`), so ``Settings()``
    is a valid config.
    """

    service_name: str | None = _default("service_name")
    service_namespace: str = _default("service_namespace")
    environment: str = _default("environment")
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sdk_disabled: bool = _default("sdk_disabled")
    traces_exporters: tuple[str, ...] = _default("traces_exporters")
    metrics_exporters: tuple[str, ...] = _default("metrics_exporters")
    logs_exporters: tuple[str, ...] = _default("logs_exporters")
    otlp: Mapping[str, SignalExport] = field(
        default_factory=lambda: {s: SignalExport() for s in SIGNALS}
    )
    sampler: str = _default("sampler")
    sampler_arg: float = _default("sampler_arg")
    bsp_max_queue_size: int = _default("bsp_max_queue_size")
    bsp_schedule_delay_ms: float = _default("bsp_schedule_delay_ms")
    bsp_max_export_batch_size: int = _default("bsp_max_export_batch_size")
    bsp_export_timeout_ms: float = _default("bsp_export_timeout_ms")
    blrp_max_queue_size: int = _default("blrp_max_queue_size")
    blrp_schedule_delay_ms: float = _default("blrp_schedule_delay_ms")
    blrp_max_export_batch_size: int = _default("blrp_max_export_batch_size")
    metric_export_interval_ms: float = _default("metric_export_interval_ms")
    metric_export_timeout_ms: float = _default("metric_export_timeout_ms")
    prometheus_host: str = _default("prometheus_host")
    prometheus_port: int = _default("prometheus_port")
    excluded_urls: tuple[str, ...] = _default("excluded_urls")
    excluded_routes: tuple[str, ...] = _default("excluded_routes")
    disabled_instrumentations: frozenset[str] = _default("disabled_instrumentations")
    symbols: tuple[str, ...] = _default("symbols")
    symbol_cap: int = _default("symbol_cap")
    shutdown_timeout_s: float = _default("shutdown_timeout_s")
    fastapi_operation_spans: bool = _default("fastapi_operation_spans")
    redact_query_params: tuple[str, ...] = _default("redact_query_params")
    """Query parameters masked besides the built-in list (sanitize.SENSITIVE_QUERY_PARAMS)."""
    #: Switches back to the stock paths, one per lean path of ours (same telemetry).
    lean_server: bool = _default("lean_server")
    lean_spans: bool = _default("lean_spans")
    lean_metrics: bool = _default("lean_metrics")
    lean_encoder: bool = _default("lean_encoder")
    log_format: LogFormat = _default("log_format")  # noqa: RUF009 (a str: immutable)
    log_level: str = _default("log_level")
    log_to_stdout: bool = _default("log_to_stdout")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Parse ``environ``; bad values warn once each and fall back to the default.

        Args:
            environ: The variables to read (defaults to the process environment).

        Returns:
            A frozen :class:`Settings`. This never raises for bad input.
        """
        r = Reader(environ)
        values = {v.field: _read(r, v) for v in VARIABLES if not v.dedicated}
        sampler_arg = BY_FIELD["sampler_arg"]
        if values["sampler"].endswith("traceidratio"):
            values["sampler_arg"] = r.parse(
                sampler_arg.env, sampler_arg.default, _ratio, "expected a ratio in [0, 1]"
            )
        # The FastAPI-specific list replaces the generic one, as upstream does.
        # Both are read, so that a bad generic pattern is reported even when unused.
        urls = [r.patterns(v.env) for v in VARIABLES if v.field == "excluded_urls"]
        values["excluded_urls"] = next((u for u in urls if u), BY_FIELD["excluded_urls"].default)
        return cls(
            **values,
            resource_attributes=_parse_resource_attributes(r),
            otlp={s: signal_export(r, s) for s in SIGNALS},
        )

    def excluded_paths_regex(self) -> re.Pattern[str] | None:
        """One compiled pattern for every excluded URL and route, or None.

        OTEL_PYTHON_*_EXCLUDED_URLS entries are regular expressions searched in the
        path (as upstream does); excluded routes match a path exactly.
        """
        # from_env already dropped (and reported) the patterns that do not compile.
        parts = [f"(?:{p})" for p in self.excluded_urls if valid_regex(p)]
        parts += [f"(?:^{re.escape(p)}/?$)" for p in self.excluded_routes]
        return re.compile("|".join(parts)) if parts else None


def symbol_policy(environ: Mapping[str, str] = os.environ) -> tuple[tuple[str, ...] | None, int]:
    """The metric symbol allow-list (None: no list) and cap, parsed as in :class:`Settings`.

    For the trading meters used before (or without) ``configure()``; only these two
    variables are read, so nothing else is warned about twice.
    """
    r = Reader(environ)
    symbols: tuple[str, ...] = _read(r, BY_FIELD["symbols"])
    cap: int = _read(r, BY_FIELD["symbol_cap"])
    return symbols or None, cap


def _ratio(value: str) -> float:
    row = BY_FIELD["sampler_arg"]
    f = float(ascii_only(value))
    if not row.low <= f <= row.high:
        raise ValueError(value)
    return f
