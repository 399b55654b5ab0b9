"""Every environment variable the library reads, declared once: the settings table.

Each :class:`EnvVar` row gives a variable's field, kind, default, bounds and a line of
documentation. :meth:`otel._internal.settings.Settings.from_env` parses from it, and
``docs/configuration.md`` is generated from it (``make docs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from otel._internal.env_reader import MAX_MS

#: Routes never traced: probes and scrapes would drown the real traffic.
DEFAULT_EXCLUDED_ROUTES = ("/health", "/healthz", "/livez", "/ready", "/readyz", "/metrics")

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
    EnvVar("TRADING_OTEL_LEAN_SPANS", "lean_spans", "boolean", True,
           "spans are lean slotted objects behind the OpenTelemetry API, with the SDK's "
           "processors, sampler and limits; `false` uses the SDK's own spans, with the same "
           "data"),
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
