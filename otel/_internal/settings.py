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

Every variable read here is declared once, in :data:`VARIABLES`: its field, kind,
default, bounds and a line of documentation. ``from_env`` parses from that table (the
OTLP, sampler-argument, excluded-URL and resource-attribute variables through small
parsers of their own, which still take names and defaults from it), and
``docs/configuration.md`` is generated from it (``make docs``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from otel._internal.env_reader import MAX_MS, Reader, ascii_only, split_list, valid_regex

_log = logging.getLogger("otel.config")
T = TypeVar("T")

LogFormat = Literal["auto", "json", "console"]
Protocol = Literal["grpc", "http/protobuf"]

SIGNALS = ("traces", "metrics", "logs")
#: Routes never traced: probes and scrapes would drown the real traffic.
DEFAULT_EXCLUDED_ROUTES = ("/health", "/healthz", "/livez", "/ready", "/readyz", "/metrics")


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


Kind = Literal[
    "text", "boolean", "integer", "number", "choice", "exporters", "list",
    "ratio", "pairs", "patterns", "url", "timeout",
]  # fmt: skip


@dataclass(frozen=True)
class EnvVar:
    """One environment variable the library reads: its only declaration.

    ``from_env`` parses it from this row (default, bounds, allowed values) and
    ``docs/configuration.md`` is generated from it (``make docs``).
    """

    env: str
    """The variable; ``{TRACES,METRICS,LOGS}`` in it stands for one variable per signal."""
    field: str
    """The :class:`Settings` field it sets."""
    kind: Kind
    default: Any
    """The value the field takes when the variable is unset, empty or bad."""
    meaning: str
    """One line for the docs."""
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    """Choices and exporter names accepted (in lower case)."""
    case: Literal["", "lower", "upper"] = ""
    """How list entries (and a choice's result) are normalised."""
    unit: str = ""
    shown: str | None = None
    """The default as the docs show it, when the value alone says too little."""
    bad: str | None = None
    """What a bad value does, when the kind and bounds do not say it already."""
    fail_open: bool = True
    """Telemetry: a bad value warns and the default applies (true of every row here)."""

    @property
    def dedicated(self) -> bool:
        """Parsed by a small parser of its own (per-signal, or depending on another)."""
        return self.field in _COMPOSITE_FIELDS

    @property
    def low(self) -> float:
        return self.minimum if self.minimum is not None else 0

    @property
    def high(self) -> float:
        if self.maximum is not None:
            return self.maximum
        return MAX_INT if self.kind == "integer" else MAX_MS


#: Written as an f-string in the table, so that tests/fixtures/env_matrix.py (which scans
#: this file for variable names) expands it to the three per-signal variables.
PER_SIGNAL = "{TRACES,METRICS,LOGS}"
MAX_INT = 2**31
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
_COMPOSITE_FIELDS = frozenset({"otlp", "sampler_arg", "excluded_urls", "resource_attributes"})
_SPANS = "span batch processor"
_LOGS = "log batch processor"

#: Every variable the library reads, declared once (``docs/configuration.md`` order).
VARIABLES: tuple[EnvVar, ...] = (
    # Project settings.
    EnvVar("TRADING_OTEL_SERVICE_NAMESPACE", "service_namespace", "text", "trading",
           "`service.namespace`"),
    EnvVar("TRADING_OTEL_ENVIRONMENT", "environment", "text", "local",
           "`deployment.environment.name`"),
    EnvVar("TRADING_OTEL_SHUTDOWN_TIMEOUT", "shutdown_timeout_s", "number", 5.0,
           "seconds that `shutdown()` and the lifespan flush may take; what is still unsent "
           "is then dropped, with a warning", maximum=3600.0, unit="s"),
    EnvVar("TRADING_OTEL_FASTAPI_OPERATION_SPANS", "fastapi_operation_spans", "boolean", False,
           "also emit FastAPI's `fastapi.dependencies` / `fastapi.endpoint` / "
           "`fastapi.serialization` child spans"),
    EnvVar("TRADING_OTEL_REDACT_QUERY_PARAMS", "redact_query_params", "list", (),
           "more query parameters whose values are masked as `REDACTED` (names kept) in "
           "`url.query`, in the httpx client spans' `url.full` and in exception messages, on "
           "top of the built-in `api_key`, `apikey`, `key`, `token`, `access_token`, `secret`, "
           "`password`, `signature`, `sig` and semconv's signed-URL parameters. Comma "
           "separated; names match case-insensitively and after percent-decoding (`api%5Fkey`). "
           "See [docs/collector.md](collector.md#secrets-in-values) for what the collector "
           "masks as well"),
    EnvVar("TRADING_OTEL_EXCLUDED_ROUTES", "excluded_routes", "list", DEFAULT_EXCLUDED_ROUTES,
           "paths that get no span and no request metric (exact match, trailing `/` allowed)"),
    EnvVar("TRADING_OTEL_LOG_FORMAT", "log_format", "choice", "auto",
           "stdout log lines: `json`, `console`, or `auto` (console on a TTY, JSON otherwise). "
           "Lines written inside a span carry `trace_id` and `span_id`",
           allowed=("auto", "json", "console")),
    EnvVar("TRADING_OTEL_LOG_LEVEL", "log_level", "choice", "INFO",
           "root log level, applied only when the application left Python's default; then "
           "the `httpx` and `httpcore` loggers stay at WARNING unless the application set "
           "their level (their one INFO line per request repeats the client span)",
           allowed=("debug", "info", "warning", "error", "critical"), case="upper"),
    EnvVar("TRADING_OTEL_LOG_STDOUT", "log_to_stdout", "boolean", True,
           "add the stdout handler (turn off when the app already logs to stdout)"),
    EnvVar("TRADING_OTEL_SYMBOLS", "symbols", "list", (),
           "allow-list for the `symbol` metric attribute, comma separated and "
           "case-insensitive. Other symbols fold into `_other`", case="upper"),
    EnvVar("TRADING_OTEL_SYMBOL_CAP", "symbol_cap", "integer", 50,
           "with no allow-list, the number of distinct symbols admitted before folding into "
           "`_other`", maximum=10000),
    EnvVar("TRADING_OTEL_LEAN_SERVER", "lean_server", "boolean", True,
           "the lean FastAPI server path (one span and one duration record per request); "
           "`false` puts FastAPI's own telemetry back, with the same span and metric"),
    EnvVar("TRADING_OTEL_LEAN_METRICS", "lean_metrics", "boolean", True,
           "the trading meters record through pre-bound SDK aggregations and a lean exemplar "
           "reservoir; `false` uses the SDK's public recording path, with the same points"),
    EnvVar("TRADING_OTEL_LEAN_ENCODER", "lean_encoder", "boolean", True,
           "OTLP/HTTP batches are encoded by the lean encoder; `false` uses the SDK's "
           "encoder, with the same data"),
    # OpenTelemetry variables.
    EnvVar("OTEL_SDK_DISABLED", "sdk_disabled", "boolean", False,
           "`true` sets up nothing and starts no thread; the service runs uninstrumented"),
    EnvVar("OTEL_SERVICE_NAME", "service_name", "text", None,
           "wins over everything else, as the spec says",
           shown="`service_name=` argument, else `unknown_service:<python executable>`"),
    EnvVar("OTEL_RESOURCE_ATTRIBUTES", "resource_attributes", "pairs", {},
           "`k=v,k2=v2`, percent-decoded; overrides our defaults and the `configure()` "
           "arguments"),
    EnvVar("OTEL_TRACES_EXPORTER", "traces_exporters", "exporters", ("otlp",),
           "`otlp`, `console`, `none` (a list)", allowed=("otlp", "console", "none")),
    EnvVar("OTEL_METRICS_EXPORTER", "metrics_exporters", "exporters", ("otlp",),
           "`otlp`, `prometheus`, `console`, `none` (a list)",
           allowed=("otlp", "prometheus", "console", "none")),
    EnvVar("OTEL_LOGS_EXPORTER", "logs_exporters", "exporters", ("otlp",),
           "`otlp`, `console`, `none` (a list)", allowed=("otlp", "console", "none")),
    EnvVar("OTEL_EXPORTER_OTLP_PROTOCOL", "otlp", "choice", "http/protobuf",
           "`grpc` or `http/protobuf`, for every signal. `grpc` needs the `grpc` extra; "
           "without it, one warning and `http/protobuf` (an endpoint on port 4317 moves to "
           "4318)", allowed=("grpc", "http/protobuf")),
    EnvVar(f"OTEL_EXPORTER_OTLP_{PER_SIGNAL}_PROTOCOL", "otlp", "choice", None,
           "the same, for one signal", allowed=("grpc", "http/protobuf"),
           shown="`OTEL_EXPORTER_OTLP_PROTOCOL`", bad="unknown: warning, the generic value"),
    EnvVar("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp", "url", None,
           "base URL (`/v1/<signal>` is appended for HTTP). Port 4317 with `http/protobuf`, "
           "or 4318 with `grpc`, gets one warning naming the endpoint and protocol variables "
           "and the fix; what you set is still used",
           shown=f"`{DEFAULT_HTTP_ENDPOINT}` (`{DEFAULT_GRPC_ENDPOINT}` for gRPC)"),
    EnvVar(f"OTEL_EXPORTER_OTLP_{PER_SIGNAL}_ENDPOINT", "otlp", "url", None,
           "the full URL for one signal, used as is; the same port check",
           shown="from `OTEL_EXPORTER_OTLP_ENDPOINT`"),
    EnvVar("OTEL_EXPORTER_OTLP_TIMEOUT", "otlp", "timeout", 10000.0,
           "per-export timeout in **milliseconds**, as the spec says (`1000` is 1 s). A value "
           "below 100 gets a \"did you mean seconds?\" warning but still means milliseconds",
           unit="ms"),
    EnvVar(f"OTEL_EXPORTER_OTLP_{PER_SIGNAL}_TIMEOUT", "otlp", "timeout", None,
           "the same, for one signal", unit="ms", shown="`OTEL_EXPORTER_OTLP_TIMEOUT`",
           bad="not a number in (0, {high}]: warning, then the generic value"),
    EnvVar("OTEL_TRACES_SAMPLER", "sampler", "choice", "parentbased_always_on",
           "the head sampler", allowed=(
               "always_on", "always_off", "traceidratio", "parentbased_always_on",
               "parentbased_always_off", "parentbased_traceidratio")),
    EnvVar("OTEL_TRACES_SAMPLER_ARG", "sampler_arg", "ratio", 1.0,
           "ratio for the `*traceidratio` samplers (read only for them)", maximum=1.0),
    EnvVar("OTEL_BSP_SCHEDULE_DELAY", "bsp_schedule_delay_ms", "number", 5000.0,
           f"{_SPANS}: delay between two exports", unit="ms"),
    EnvVar("OTEL_BSP_EXPORT_TIMEOUT", "bsp_export_timeout_ms", "number", 30000.0,
           f"{_SPANS}: time one export may take", unit="ms"),
    EnvVar("OTEL_BSP_MAX_QUEUE_SIZE", "bsp_max_queue_size", "integer", 2048,
           f"{_SPANS}: the queue is bounded; when it is full, spans are dropped rather than "
           "memory growing", minimum=1),
    EnvVar("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "bsp_max_export_batch_size", "integer", 512,
           f"{_SPANS}: spans per export", minimum=1),
    EnvVar("OTEL_BLRP_SCHEDULE_DELAY", "blrp_schedule_delay_ms", "number", 1000.0,
           f"{_LOGS}: delay between two exports", unit="ms"),
    EnvVar("OTEL_BLRP_MAX_QUEUE_SIZE", "blrp_max_queue_size", "integer", 2048,
           f"{_LOGS}: the bounded queue", minimum=1),
    EnvVar("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "blrp_max_export_batch_size", "integer", 512,
           f"{_LOGS}: records per export", minimum=1),
    EnvVar("OTEL_METRIC_EXPORT_INTERVAL", "metric_export_interval_ms", "number", 60000.0,
           "push interval for `otlp`/`console` metrics", minimum=1, unit="ms"),
    EnvVar("OTEL_METRIC_EXPORT_TIMEOUT", "metric_export_timeout_ms", "number", 30000.0,
           "time one metric push may take", unit="ms"),
    EnvVar("OTEL_EXPORTER_PROMETHEUS_HOST", "prometheus_host", "text", "localhost",
           "pull endpoint for `prometheus` in `OTEL_METRICS_EXPORTER`, serving OpenMetrics "
           "with exemplars"),
    EnvVar("OTEL_EXPORTER_PROMETHEUS_PORT", "prometheus_port", "integer", 9464,
           "its port. A port already in use: warning, the other readers keep working",
           maximum=65535),
    EnvVar("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "excluded_urls", "patterns", (),
           "comma-separated regular expressions searched in the request path; replaces "
           "`OTEL_PYTHON_EXCLUDED_URLS`"),
    EnvVar("OTEL_PYTHON_EXCLUDED_URLS", "excluded_urls", "patterns", (),
           "the same, for every instrumentation"),
    EnvVar("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "disabled_instrumentations", "list",
           frozenset(), "any of `fastapi`, `asyncpg`, `redis`, `httpx`, `logging` (the OTLP "
           "log handler), or `*`", case="lower", bad="unknown names are ignored"),
)  # fmt: skip

#: What a bad value of each kind does, for the docs; a row's ``bad`` replaces it. ``{low}``,
#: ``{high}`` and ``{default}`` are the row's bounds and default.
ON_BAD: dict[str, str] = {
    "text": "(any value accepted)",
    "list": "(any value accepted)",
    "boolean": "not a boolean: warning, {default}",
    "integer": "not an integer in [{low}, {high}]: warning, {default}",
    "number": "not an ASCII number in [{low}, {high}]: warning, {default}",
    "ratio": "not a number in [{low}, {high}]: warning, {default}",
    "choice": "unknown: warning, {default}",
    "exporters": "unknown names dropped with a warning; if none is left, {default}",
    "timeout": "not a number in ({low}, {high}]: warning, {default}",
    "url": "not an ASCII `http(s)://host[:port]` URL (write IDN hosts in punycode): warning; "
    "the next valid source or the SDK default is used",
    "patterns": "an invalid regex is dropped with one warning naming the variable; the others stay",
    "pairs": "malformed pair: warning, pair skipped",
}

#: Each variable's row.
BY_ENV: dict[str, EnvVar] = {v.env: v for v in VARIABLES}
#: The first row of each field: the one that holds the field's default.
BY_FIELD: dict[str, EnvVar] = {}
for _v in VARIABLES:
    BY_FIELD.setdefault(_v.field, _v)
DEFAULT_SYMBOL_CAP: int = BY_ENV["TRADING_OTEL_SYMBOL_CAP"].default


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
class SignalExport:
    """How one signal is exported over OTLP."""

    protocol: Protocol = BY_ENV["OTEL_EXPORTER_OTLP_PROTOCOL"].default
    endpoint: str | None = None
    """The full endpoint to use; None lets the exporter apply its default."""
    timeout_s: float | None = None


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
            otlp={s: _signal_export(r, s) for s in SIGNALS},
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


#: The OTLP rows: generic and per-signal protocol, endpoint and timeout, in table order.
_PROTOCOL, _SIGNAL_PROTOCOL, _ENDPOINT, _SIGNAL_ENDPOINT, _TIMEOUT, _SIGNAL_TIMEOUT = (
    v for v in VARIABLES if v.field == "otlp"
)
#: The spec's default export timeout, in milliseconds.
DEFAULT_OTLP_TIMEOUT_MS: float = _TIMEOUT.default


def _signal_export(r: Reader, signal: str) -> SignalExport:
    up = signal.upper()
    protocols = _PROTOCOL.allowed
    generic = r.choice(_PROTOCOL.env, _PROTOCOL.default, protocols)
    signal_protocol = _SIGNAL_PROTOCOL.env.replace(PER_SIGNAL, up)
    protocol = r.choice(signal_protocol, generic, protocols)
    proto_var = signal_protocol if r.raw(signal_protocol) else _PROTOCOL.env
    fallback = protocol == "grpc" and not grpc_installed()
    if fallback:
        protocol = "http/protobuf"
    specific_var = _SIGNAL_ENDPOINT.env.replace(PER_SIGNAL, up)
    specific = r.url(specific_var)
    base = r.url(_ENDPOINT.env)
    # Resolved here and passed explicitly, so that an injected environ is honoured and a
    # rejected value never reaches the exporter (which would read os.environ itself).
    endpoint: str | None = None
    if specific:
        endpoint = specific
    elif base:
        endpoint = _join(base, protocol, signal)
    elif specific == "" or base == "":
        endpoint = _default_endpoint(protocol, signal)
    if fallback:
        endpoint = _grpc_fallback(r, proto_var, endpoint, signal)
    if (specific or base) and not fallback:
        _check_port(
            r,
            specific_var if specific else _ENDPOINT.env,
            specific or base or "",
            protocol,
            signal_protocol,
        )
    # Read both, so that a bad generic value is reported even when the signal's own is set.
    timeout_var = _SIGNAL_TIMEOUT.env.replace(PER_SIGNAL, up)
    timeout = _timeout_ms(r, timeout_var)
    generic_timeout = _timeout_ms(r, _TIMEOUT.env)
    if timeout is None:
        timeout = generic_timeout
    if timeout is None and (r.raw(timeout_var) or r.raw(_TIMEOUT.env)):
        # Rejected: pass the SDK's default explicitly so the exporter does not re-read it.
        timeout = DEFAULT_OTLP_TIMEOUT_MS
    return SignalExport(
        protocol=protocol,  # type: ignore[arg-type]
        endpoint=endpoint,
        timeout_s=None if timeout is None else timeout / 1000.0,
    )


def _timeout_ms(r: Reader, name: str) -> float | None:
    """An OTLP export timeout in milliseconds, as the spec defines it (> 0, finite).

    Python's exporters took seconds before the spec settled, so a value that only makes
    sense as seconds gets a hint, but milliseconds still apply: reading it as seconds
    would turn a spec-valid ``1000`` (1 s) into 17 minutes.
    """
    high = _TIMEOUT.high

    def cast(v: str) -> float | None:
        f = float(ascii_only(v))
        if not 0 < f <= high:
            raise ValueError(v)
        return f

    ms = r.parse(name, None, cast, f"expected milliseconds in (0, {high:g}]")
    if ms is not None and ms < 100:
        r.advise(
            name,
            r.raw(name) or "",
            f"OTLP timeouts are in milliseconds, so this is {ms:g} ms; "
            f"did you mean seconds? (then write {ms * 1000:g})",
        )
    return ms


#: The OTLP ports by convention, and the protocol each one speaks.
_PORT_PROTOCOL = {4317: "grpc", 4318: "http/protobuf"}


def _check_port(r: Reader, name: str, url: str, protocol: str, signal_protocol: str) -> None:
    """Warn (once) when an endpoint's port is the other protocol's conventional port."""
    try:
        port = urlsplit(url).port
    except ValueError:
        return
    expected = _PORT_PROTOCOL.get(port or 0)
    if expected is None or expected == protocol:
        return
    proto_var = signal_protocol if r.raw(signal_protocol) else _PROTOCOL.env
    other = 4318 if port == 4317 else 4317
    r.advise(
        name,
        url,
        f"port {port} is where OTLP/{'gRPC' if expected == 'grpc' else 'HTTP'} listens, but "
        f"the protocol is {protocol} ({proto_var}); set {proto_var}={expected}, or point "
        f"{name} at port {other}. Sending as {protocol} anyway.",
    )


def grpc_installed() -> bool:
    """Whether the OTLP/gRPC exporter (the ``grpc`` extra) can be imported."""
    try:
        return importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None
    except ImportError:
        return False


def _grpc_fallback(r: Reader, proto_var: str, endpoint: str | None, signal: str) -> str:
    """OTLP/HTTP instead of a gRPC exporter that is not installed, on the HTTP port."""
    url = endpoint or _default_endpoint("http/protobuf", signal)
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == 4317:  # the gRPC port by convention: its HTTP neighbour is 4318
        url = parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:4318").geturl()
    r.advise(
        proto_var,
        "grpc",
        "the OTLP/gRPC exporter is not installed (pip install 'trading-otel[grpc]'); "
        f"exporting over http/protobuf instead ({signal} to {url})",
    )
    return url


def _default_endpoint(protocol: str, signal: str) -> str:
    if protocol == "grpc":
        return DEFAULT_GRPC_ENDPOINT
    return f"{DEFAULT_HTTP_ENDPOINT}/v1/{signal}"


def _join(base: str, protocol: str, signal: str) -> str:
    if protocol == "grpc":
        return base
    return f"{base.rstrip('/')}/v1/{signal}"
