"""How each signal is exported over OTLP: protocol, endpoint and timeout, per the spec.

The generic ``OTEL_EXPORTER_OTLP_*`` variables and their per-signal forms resolve here
into one :class:`SignalExport` per signal, with the spec's precedence. Warnings: a port
that is the other protocol's conventional one, a timeout that looks like seconds, and
``grpc`` without the ``grpc`` extra (which falls back to OTLP/HTTP).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from otel._internal.env_reader import Reader, ascii_only
from otel._internal.variables import (
    BY_ENV,
    DEFAULT_GRPC_ENDPOINT,
    DEFAULT_HTTP_ENDPOINT,
    PER_SIGNAL,
    VARIABLES,
)

Protocol = Literal["grpc", "http/protobuf"]
SIGNALS = ("traces", "metrics", "logs")


@dataclass(frozen=True)
class SignalExport:
    """How one signal is exported over OTLP."""

    protocol: Protocol = BY_ENV["OTEL_EXPORTER_OTLP_PROTOCOL"].default
    endpoint: str | None = None
    """The full endpoint to use; None lets the exporter apply its default."""
    timeout_s: float | None = None


#: The OTLP rows: generic and per-signal protocol, endpoint and timeout, in table order.
_PROTOCOL, _SIGNAL_PROTOCOL, _ENDPOINT, _SIGNAL_ENDPOINT, _TIMEOUT, _SIGNAL_TIMEOUT = (
    v for v in VARIABLES if v.field == "otlp"
)
#: The spec's default export timeout, in milliseconds.
DEFAULT_OTLP_TIMEOUT_MS: float = _TIMEOUT.default


def signal_export(r: Reader, signal: str) -> SignalExport:
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
