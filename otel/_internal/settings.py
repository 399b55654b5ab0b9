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
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

_log = logging.getLogger("otel.config")
T = TypeVar("T")

LogFormat = Literal["auto", "json", "console"]
Protocol = Literal["grpc", "http/protobuf"]

SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)
TRACE_EXPORTERS = frozenset({"otlp", "console", "none"})
METRIC_EXPORTERS = frozenset({"otlp", "prometheus", "console", "none"})
LOG_EXPORTERS = frozenset({"otlp", "console", "none"})
SIGNALS = ("traces", "metrics", "logs")
#: The largest duration accepted, in milliseconds (2**31 - 1, about 24.8 days; the SDK's
#: thread waits overflow long before 1e300).
MAX_MS = float(2**31 - 1)
#: Routes never traced: probes and scrapes would drown the real traffic.
DEFAULT_EXCLUDED_ROUTES = ("/health", "/healthz", "/livez", "/ready", "/readyz", "/metrics")


#: Advice already given about os.environ values that are kept (e.g. an endpoint/protocol
#: mismatch), so that a second ``from_env(os.environ)`` does not repeat it.
_advised: set[tuple[str, str]] = set()


class _Reader:
    """Reads variables from one environ, warning once per bad value."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.env = environ
        self.live = environ is os.environ
        self._warned: set[str] = set()

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def bad(
        self, name: str, value: str, reason: str, default: object, replacement: str | None = None
    ) -> None:
        """Report a rejected value; ``replacement`` is what is kept of it (None: nothing)."""
        # Shared variables (OTEL_EXPORTER_OTLP_ENDPOINT...) are read once per signal.
        if name in self._warned:
            return
        self._warned.add(name)
        _log.warning("invalid value %s=%r (%s); using the default %r", name, value, reason, default)
        if self.live:
            if replacement is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = replacement

    def advise(self, name: str, value: str, message: str) -> None:
        """Warn about a value that is kept; once per variable (and per process for os.environ)."""
        key = (name, value)
        if name in self._warned or (self.live and key in _advised):
            return
        self._warned.add(name)
        if self.live:
            _advised.add(key)
        _log.warning("%s=%r: %s", name, value, message)

    def parse(self, name: str, default: T, cast: Callable[[str], T], reason: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return cast(value)
        except (ValueError, TypeError):
            self.bad(name, value, reason, default)
            return default

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float = MAX_MS
    ) -> float:
        def cast(v: str) -> float:
            f = float(_ascii(v))
            # NaN fails both comparisons; a value past ``maximum`` would overflow the
            # SDK's thread waits (1e300 ms) or the exit deadline.
            if not minimum <= f <= maximum:
                raise ValueError(v)
            return f

        return self.parse(name, default, cast, f"expected a number in [{minimum:g}, {maximum:g}]")

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        def cast(v: str) -> int:
            i = int(_ascii(v))
            if not minimum <= i <= maximum:
                raise ValueError(v)
            return i

        return self.parse(name, default, cast, f"expected an integer in [{minimum}, {maximum}]")

    def boolean(self, name: str, default: bool) -> bool:
        def cast(v: str) -> bool:
            low = v.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError(v)

        return self.parse(name, default, cast, "expected true or false")

    def choice(self, name: str, default: str, allowed: frozenset[str] | tuple[str, ...]) -> str:
        def cast(v: str) -> str:
            if v.lower() not in allowed:
                raise ValueError(v)
            return v.lower()

        return self.parse(name, default, cast, f"expected one of {', '.join(sorted(allowed))}")

    def names(
        self, name: str, default: tuple[str, ...], allowed: frozenset[str]
    ) -> tuple[str, ...]:
        """A comma list of exporter names; unknown names are dropped with one warning."""
        value = self.raw(name)
        if value is None:
            return default
        items = [p.strip().lower() for p in value.split(",") if p.strip()]
        unknown = [p for p in items if p not in allowed]
        known = tuple(dict.fromkeys(p for p in items if p in allowed))
        if unknown:
            kept = ",".join(known) or None
            known = known or default
            self.bad(name, value, f"unknown exporter {', '.join(unknown)}", ",".join(known), kept)
        return () if "none" in known else known

    def patterns(self, name: str) -> tuple[str, ...]:
        """A comma list of regular expressions; entries that do not compile are dropped."""
        value = self.raw(name)
        good: list[str] = []
        bad: list[str] = []
        for item in _split(value):
            (good if _valid_regex(item) else bad).append(item)
        if value is not None and bad:
            reason = f"invalid pattern {', '.join(map(repr, bad))}"
            self.bad(name, value, reason, ",".join(good) or "nothing", ",".join(good) or None)
        return tuple(good)

    def url(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        parts = urlsplit(value)
        # Non-ASCII hosts must be written in their IDNA (punycode) form.
        if parts.scheme in ("http", "https") and parts.hostname and value.isascii():
            try:
                _ = parts.port  # raises on a non-numeric port
                return value
            except ValueError:
                pass
        self.bad(name, value, "not an http(s) URL with a host", "the SDK default endpoint")
        return ""  # "" = present but rejected: the SDK default must be forced


def _parse_resource_attributes(reader: _Reader) -> dict[str, str]:
    """Parse OTEL_RESOURCE_ATTRIBUTES (``k=v,k2=v2``, percent-encoded values)."""
    value = reader.raw("OTEL_RESOURCE_ATTRIBUTES")
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
            "OTEL_RESOURCE_ATTRIBUTES",
            value,
            f"malformed pair {bad[0]!r}",
            "skip it",
            ",".join(good) or None,
        )
    return attrs


def _ascii(value: str) -> str:
    # float() and int() accept any Unicode digit (fullwidth ones too); the spec means ASCII.
    if not value.isascii():
        raise ValueError(value)
    return value


def _split(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(p.strip() for p in value.split(",") if p.strip())


@dataclass(frozen=True)
class SignalExport:
    """How one signal is exported over OTLP."""

    protocol: Protocol = "http/protobuf"
    endpoint: str | None = None
    """The full endpoint to use; None lets the exporter apply its default."""
    timeout_s: float | None = None


@dataclass(frozen=True)
class Settings:
    """Everything trading-otel reads from the environment, parsed once.

    Build it with :meth:`from_env`; tests pass a plain dict instead of patching
    ``os.environ``. Every field has a default, so ``Settings()`` is a valid config.
    """

    service_name: str | None = None
    service_namespace: str = "trading"
    environment: str = "local"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sdk_disabled: bool = False
    traces_exporters: tuple[str, ...] = ("otlp",)
    metrics_exporters: tuple[str, ...] = ("otlp",)
    logs_exporters: tuple[str, ...] = ("otlp",)
    otlp: Mapping[str, SignalExport] = field(
        default_factory=lambda: {s: SignalExport() for s in SIGNALS}
    )
    sampler: str = "parentbased_always_on"
    sampler_arg: float = 1.0
    bsp_max_queue_size: int = 2048
    bsp_schedule_delay_ms: float = 5000.0
    bsp_max_export_batch_size: int = 512
    bsp_export_timeout_ms: float = 30000.0
    blrp_max_queue_size: int = 2048
    blrp_schedule_delay_ms: float = 1000.0
    blrp_max_export_batch_size: int = 512
    metric_export_interval_ms: float = 60000.0
    metric_export_timeout_ms: float = 30000.0
    prometheus_host: str = "localhost"
    prometheus_port: int = 9464
    excluded_urls: tuple[str, ...] = ()
    excluded_routes: tuple[str, ...] = DEFAULT_EXCLUDED_ROUTES
    disabled_instrumentations: frozenset[str] = frozenset()
    symbols: tuple[str, ...] = ()
    symbol_cap: int = 50
    shutdown_timeout_s: float = 5.0
    fastapi_operation_spans: bool = False
    redact_query_params: tuple[str, ...] = ()
    """Query parameters masked besides the built-in list (sanitize.SENSITIVE_QUERY_PARAMS)."""
    log_format: LogFormat = "auto"
    log_level: str = "INFO"
    log_to_stdout: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Parse ``environ``; bad values warn once each and fall back to the default.

        Args:
            environ: The variables to read (defaults to the process environment).

        Returns:
            A frozen :class:`Settings`. This never raises for bad input.
        """
        r = _Reader(environ)
        d = cls()
        sampler = r.choice("OTEL_TRACES_SAMPLER", d.sampler, SAMPLERS)
        sampler_arg = d.sampler_arg
        if sampler.endswith("traceidratio"):
            sampler_arg = r.parse(
                "OTEL_TRACES_SAMPLER_ARG", 1.0, _ratio, "expected a ratio in [0, 1]"
            )
        return cls(
            service_name=r.raw("OTEL_SERVICE_NAME"),
            service_namespace=r.raw("TRADING_OTEL_SERVICE_NAMESPACE") or d.service_namespace,
            environment=r.raw("TRADING_OTEL_ENVIRONMENT") or d.environment,
            resource_attributes=_parse_resource_attributes(r),
            sdk_disabled=r.boolean("OTEL_SDK_DISABLED", False),
            traces_exporters=r.names("OTEL_TRACES_EXPORTER", d.traces_exporters, TRACE_EXPORTERS),
            metrics_exporters=r.names(
                "OTEL_METRICS_EXPORTER", d.metrics_exporters, METRIC_EXPORTERS
            ),
            logs_exporters=r.names("OTEL_LOGS_EXPORTER", d.logs_exporters, LOG_EXPORTERS),
            otlp={s: _signal_export(r, s) for s in SIGNALS},
            sampler=sampler,
            sampler_arg=sampler_arg,
            bsp_max_queue_size=r.integer("OTEL_BSP_MAX_QUEUE_SIZE", 2048, minimum=1),
            bsp_schedule_delay_ms=r.number("OTEL_BSP_SCHEDULE_DELAY", 5000.0),
            bsp_max_export_batch_size=r.integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, minimum=1),
            bsp_export_timeout_ms=r.number("OTEL_BSP_EXPORT_TIMEOUT", 30000.0),
            blrp_max_queue_size=r.integer("OTEL_BLRP_MAX_QUEUE_SIZE", 2048, minimum=1),
            blrp_schedule_delay_ms=r.number("OTEL_BLRP_SCHEDULE_DELAY", 1000.0),
            blrp_max_export_batch_size=r.integer("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512, minimum=1),
            metric_export_interval_ms=r.number("OTEL_METRIC_EXPORT_INTERVAL", 60000.0, minimum=1),
            metric_export_timeout_ms=r.number("OTEL_METRIC_EXPORT_TIMEOUT", 30000.0),
            prometheus_host=r.raw("OTEL_EXPORTER_PROMETHEUS_HOST") or d.prometheus_host,
            prometheus_port=r.integer("OTEL_EXPORTER_PROMETHEUS_PORT", 9464, maximum=65535),
            # The FastAPI-specific list replaces the generic one, as upstream does.
            excluded_urls=next(
                (
                    urls
                    for urls in (
                        r.patterns("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"),
                        r.patterns("OTEL_PYTHON_EXCLUDED_URLS"),
                    )
                    if urls
                ),
                (),
            ),
            excluded_routes=_split(r.raw("TRADING_OTEL_EXCLUDED_ROUTES"))
            or DEFAULT_EXCLUDED_ROUTES,
            disabled_instrumentations=frozenset(
                p.lower() for p in _split(r.raw("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"))
            ),
            symbols=tuple(dict.fromkeys(s.upper() for s in _split(r.raw("TRADING_OTEL_SYMBOLS")))),
            symbol_cap=r.integer("TRADING_OTEL_SYMBOL_CAP", 50, minimum=0, maximum=10000),
            shutdown_timeout_s=r.number(
                "TRADING_OTEL_SHUTDOWN_TIMEOUT", 5.0, minimum=0.0, maximum=3600.0
            ),
            fastapi_operation_spans=r.boolean("TRADING_OTEL_FASTAPI_OPERATION_SPANS", False),
            redact_query_params=_split(r.raw("TRADING_OTEL_REDACT_QUERY_PARAMS")),
            log_format=r.choice(  # type: ignore[arg-type]
                "TRADING_OTEL_LOG_FORMAT", "auto", ("auto", "json", "console")
            ),
            log_level=r.choice(
                "TRADING_OTEL_LOG_LEVEL",
                "info",
                ("debug", "info", "warning", "error", "critical"),
            ).upper(),
            log_to_stdout=r.boolean("TRADING_OTEL_LOG_STDOUT", True),
        )

    def excluded_paths_regex(self) -> re.Pattern[str] | None:
        """One compiled pattern for every excluded URL and route, or None.

        OTEL_PYTHON_*_EXCLUDED_URLS entries are regular expressions searched in the
        path (as upstream does); excluded routes match a path exactly.
        """
        # from_env already dropped (and reported) the patterns that do not compile.
        parts = [f"(?:{p})" for p in self.excluded_urls if _valid_regex(p)]
        parts += [f"(?:^{re.escape(p)}/?$)" for p in self.excluded_routes]
        return re.compile("|".join(parts)) if parts else None


def _valid_regex(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _ratio(value: str) -> float:
    f = float(_ascii(value))
    if not 0.0 <= f <= 1.0:
        raise ValueError(value)
    return f


def _signal_export(r: _Reader, signal: str) -> SignalExport:
    up = signal.upper()
    protocols = ("grpc", "http/protobuf")
    generic = r.choice("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", protocols)
    protocol = r.choice(f"OTEL_EXPORTER_OTLP_{up}_PROTOCOL", generic, protocols)
    specific = r.url(f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT")
    base = r.url("OTEL_EXPORTER_OTLP_ENDPOINT")
    # Resolved here and passed explicitly, so that an injected environ is honoured and a
    # rejected value never reaches the exporter (which would read os.environ itself).
    endpoint: str | None = None
    if specific:
        endpoint = specific
    elif base:
        endpoint = _join(base, protocol, signal)
    elif specific == "" or base == "":
        endpoint = _default_endpoint(protocol, signal)
    if specific or base:
        _check_port(
            r,
            f"OTEL_EXPORTER_OTLP_{up}_ENDPOINT" if specific else "OTEL_EXPORTER_OTLP_ENDPOINT",
            specific or base or "",
            protocol,
            up,
        )
    # Read both, so that a bad generic value is reported even when the signal's own is set.
    timeout = _timeout_ms(r, f"OTEL_EXPORTER_OTLP_{up}_TIMEOUT")
    generic_timeout = _timeout_ms(r, "OTEL_EXPORTER_OTLP_TIMEOUT")
    if timeout is None:
        timeout = generic_timeout
    if timeout is None and (
        r.raw(f"OTEL_EXPORTER_OTLP_{up}_TIMEOUT") or r.raw("OTEL_EXPORTER_OTLP_TIMEOUT")
    ):
        # Rejected: pass the SDK's default explicitly so the exporter does not re-read it.
        timeout = DEFAULT_OTLP_TIMEOUT_MS
    return SignalExport(
        protocol=protocol,  # type: ignore[arg-type]
        endpoint=endpoint,
        timeout_s=None if timeout is None else timeout / 1000.0,
    )


#: The spec's default export timeout, in milliseconds.
DEFAULT_OTLP_TIMEOUT_MS = 10000.0


def _timeout_ms(r: _Reader, name: str) -> float | None:
    """An OTLP export timeout in milliseconds, as the spec defines it (> 0, finite).

    Python's exporters took seconds before the spec settled, so a value that only makes
    sense as seconds gets a hint, but milliseconds still apply: reading it as seconds
    would turn a spec-valid ``1000`` (1 s) into 17 minutes.
    """

    def cast(v: str) -> float | None:
        f = float(_ascii(v))
        if not 0 < f <= MAX_MS:
            raise ValueError(v)
        return f

    ms = r.parse(name, None, cast, f"expected milliseconds in (0, {MAX_MS:g}]")
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


def _check_port(r: _Reader, name: str, url: str, protocol: str, up: str) -> None:
    """Warn (once) when an endpoint's port is the other protocol's conventional port."""
    try:
        port = urlsplit(url).port
    except ValueError:
        return
    expected = _PORT_PROTOCOL.get(port or 0)
    if expected is None or expected == protocol:
        return
    specific = f"OTEL_EXPORTER_OTLP_{up}_PROTOCOL"
    proto_var = specific if r.raw(specific) else "OTEL_EXPORTER_OTLP_PROTOCOL"
    other = 4318 if port == 4317 else 4317
    r.advise(
        name,
        url,
        f"port {port} is where OTLP/{'gRPC' if expected == 'grpc' else 'HTTP'} listens, but "
        f"the protocol is {protocol} ({proto_var}); set {proto_var}={expected}, or point "
        f"{name} at port {other}. Sending as {protocol} anyway.",
    )


def _default_endpoint(protocol: str, signal: str) -> str:
    if protocol == "grpc":
        return "http://localhost:4317"
    return f"http://localhost:4318/v1/{signal}"


def _join(base: str, protocol: str, signal: str) -> str:
    if protocol == "grpc":
        return base
    return f"{base.rstrip('/')}/v1/{signal}"
