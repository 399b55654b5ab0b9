"""The environment guard: bad ``OTEL_*`` values are dropped before OpenTelemetry reads them.

The SDK, the API, the exporters and the contrib instrumentation parse many of their
variables themselves, some at import time. A bad value there is not a warning: it is a
``ValueError`` out of ``import otel`` (span limits, ``OTEL_PROPAGATORS``), a pipeline that
never starts (log limits, gRPC compression, credential providers), or silence (headers,
exemplar filter). This module checks those variables, in ``os.environ``, before any of
that code runs. A bad value is removed (or, for a list, rewritten without its bad
entries), with ONE warning on the ``otel.config`` logger naming the variable, the value
and what applies instead. Empty and whitespace-only ``OTEL_*`` values mean "unset" (the
spec says so), but the SDK reads some of them as "no limit" or chokes on them, so they are
removed silently.

Ownership: each variable is validated in one place. :data:`CHECKS` holds the variables
only OpenTelemetry's own code reads. The variables :mod:`otel._internal.settings` reads
(sampler, exporters, endpoints, protocols, timeouts, batch and metric intervals, the
``TRADING_OTEL_*`` ones) are validated by ``Settings.from_env``, which removes a value it
rejects from ``os.environ`` too, so the SDK never sees it either.

When it runs, once per process (:func:`guard` is idempotent):

1. At interpreter start, from ``_trading_otel_envguard.pth`` (installed with the package),
   which loads this file by path without importing ``otel`` (and so without the SDK).
   This is the only hook early enough for ``opentelemetry-instrument``: its launcher
   imports ``opentelemetry.propagate`` (through ``instrumentation.utils``) before it
   exec's the program, so ``OTEL_PROPAGATORS=bogus`` kills the launcher itself with a
   ``ValueError``, and in the program the instrumentation's ``sitecustomize`` imports the
   same module, and the SDK through ``opentelemetry-distro``, before any distro of ours is
   loaded. The launcher's cleaned environment is what the program inherits, so the
   warning appears once, in the launcher.
2. First thing in ``otel/__init__.py``, in ``configure()`` and in the distro and
   configurator entry points, for interpreters that skip ``.pth`` files (``python -S``)
   or a source tree used without installing.

If an OpenTelemetry module was imported before the guard cleaned a variable it reads at
import time, its module-level state is re-derived (:func:`_rederive`): the global
propagator is rebuilt from the cleaned ``OTEL_PROPAGATORS``, the runtime context from
``OTEL_PYTHON_CONTEXT`` and the SDK's legacy ``SPAN_ATTRIBUTE_COUNT_LIMIT``. Modules whose
import failed on the bad value are not in ``sys.modules`` and import cleanly next time.

This module imports nothing from OpenTelemetry or from ``otel``: it must be loadable
before both.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, MutableMapping

_log = logging.getLogger("otel.config")

#: (reason, replacement); replacement None means "remove the variable".
Problem = tuple[str, str | None]
Check = Callable[[str, MutableMapping[str, str]], Problem | None]

SIGNALS = ("TRACES", "METRICS", "LOGS")
_TRUNCATE = 60


class Var:
    """One variable OpenTelemetry parses itself: how to check it, what applies without it.

    A plain class, not a dataclass: this module runs at every interpreter start that
    has an ``OTEL_*`` variable, and ``dataclasses`` costs more to import than all the rest.
    """

    __slots__ = ("check", "default", "name", "secret")

    def __init__(self, name: str, check: Check, default: str, *, secret: bool = False) -> None:
        self.name = name
        self.check = check
        self.default = default
        self.secret = secret  # never echo the value (headers carry credentials)


#: The largest count or duration accepted. The SDK sizes deques with the span event and
#: link limits; past ``sys.maxsize`` that raises OverflowError when the first span starts.
MAX_COUNT = 2**31 - 1


def _ascii_int(value: str) -> int | None:
    v = value.strip()
    if not v.isascii() or not v.isdigit():
        return None
    return int(v)


def count() -> Check:
    """A non-negative integer, ASCII digits only (``int()`` also takes fullwidth digits)."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        n = _ascii_int(value)
        if n is None or n > MAX_COUNT:
            return f"expected an integer in [0, {MAX_COUNT}]", None
        return None

    return check


def choice(*allowed: str) -> Check:
    """One of ``allowed``, case-insensitive."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        if value.strip().lower() not in allowed:
            return f"expected one of {', '.join(allowed)}", None
        return None

    return check


def boolean() -> Check:
    return choice("true", "false")


def entry_point(group: str, *, many: bool = False, extra: tuple[str, ...] = ()) -> Check:
    """Name(s) of installed entry points in ``group``; a list keeps its known names."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        known = set(_entry_point_names(group)) | set(extra)
        items = [p.strip() for p in value.split(",")] if many else [value.strip()]
        unknown = [p for p in items if p not in known]
        if not unknown:
            return None
        reason = f"not an installed {group} entry point: {', '.join(map(repr, unknown))}"
        good = [p for p in items if p in known]
        return reason, (",".join(good) if many and good else None)

    return check


def names(*allowed: str) -> Check:
    """A comma list of known names; unknown entries are dropped."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        items = [p.strip() for p in value.split(",") if p.strip()]
        unknown = [p for p in items if p.lower() not in allowed]
        if not unknown:
            return None
        good = [p for p in items if p.lower() in allowed]
        reason = f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(allowed)}"
        return reason, (",".join(good) or None)

    return check


def regex_list() -> Check:
    """A comma list of regular expressions; entries that do not compile are dropped."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        good: list[str] = []
        bad: list[str] = []
        for item in (p.strip() for p in value.split(",")):
            try:
                re.compile(item)
                good.append(item)
            except re.error:
                bad.append(item)
        if not bad:
            return None
        return f"invalid pattern {', '.join(map(repr, bad))}", (",".join(good) or None)

    return check


def existing_file() -> Check:
    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        if not os.path.isfile(value.strip()):
            return "no such file", None
        return None

    return check


# The SDK's own header grammar (opentelemetry.util.re, liberal mode): a token, "=", a value
# of printable ASCII without "," or ";" or '"'. Non-ASCII would fail later, at send time.
_HEADER = re.compile(
    r"[ \t]*[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+[ \t]*=[ \t]*"
    r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*[ \t]*"
)


_TOKEN = re.compile(r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]{1,40}")


def headers() -> Check:
    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        items = [p for p in re.split(r"[ \t]*,[ \t]*", value) if p.strip()]
        bad = [p for p in items if not _HEADER.fullmatch(p)]
        if not bad:
            return None
        good = [p for p in items if _HEADER.fullmatch(p)]
        # Name a bad entry by its key when it has one; never echo anything that may be
        # (part of) a credential.
        where = [
            repr(key) if sep and _TOKEN.fullmatch(key := p.split("=", 1)[0].strip()) else f"#{i}"
            for i, p in enumerate(items, 1)
            if p in bad
            for sep in ["=" in p]
        ]
        reason = f"malformed entr{'y' if len(bad) == 1 else 'ies'} {', '.join(where)}"
        return reason, (",".join(good) or None)

    return check


def compression(signal: str | None) -> Check:
    """gzip/deflate/none over HTTP; the gRPC exporters accept only gzip (else they raise)."""

    def check(value: str, env: MutableMapping[str, str]) -> Problem | None:
        v = value.strip().lower()
        if v not in ("gzip", "deflate", "none"):
            return "expected gzip, deflate or none", None
        if v != "gzip" and _grpc(env, signal):
            if v == "none":
                return "", None  # same meaning as unset; the gRPC exporter would raise on it
            return "the gRPC exporter supports only gzip", None
        return None

    return check


def _grpc(env: MutableMapping[str, str], signal: str | None) -> bool:
    generic = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip().lower()
    signals = [signal] if signal else list(SIGNALS)
    return any(
        (env.get(f"OTEL_EXPORTER_OTLP_{s}_PROTOCOL", "").strip().lower() or generic) == "grpc"
        for s in signals
    )


_GRPC_CODES = (
    (
        "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS "
        "PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE "
        "UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED"
    )
    .lower()
    .split()
)


def _signal_vars() -> list[Var]:
    out: list[Var] = []
    for sig in (None, *SIGNALS):
        mid = f"{sig}_" if sig else ""
        out += [
            Var(f"OTEL_EXPORTER_OTLP_{mid}HEADERS", headers(), "no extra headers", secret=True),
            Var(f"OTEL_EXPORTER_OTLP_{mid}COMPRESSION", compression(sig), "none"),
            Var(f"OTEL_EXPORTER_OTLP_{mid}CERTIFICATE", existing_file(), "the system CAs"),
            Var(f"OTEL_EXPORTER_OTLP_{mid}CLIENT_KEY", existing_file(), "no client key"),
            Var(f"OTEL_EXPORTER_OTLP_{mid}CLIENT_CERTIFICATE", existing_file(), "no client cert"),
            Var(f"OTEL_EXPORTER_OTLP_{mid}INSECURE", boolean(), "from the endpoint scheme"),
        ]
        for transport in ("GRPC", "HTTP"):
            out.append(
                Var(
                    f"OTEL_PYTHON_EXPORTER_OTLP_{transport}_{mid}CREDENTIAL_PROVIDER",
                    entry_point("opentelemetry_otlp_credential_provider"),
                    "no credential provider",
                )
            )
    return out


_LIMITS = (
    ("OTEL_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "no limit"),
    ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "no limit"),
    ("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_SPAN_EVENT_COUNT_LIMIT", "128"),
    ("OTEL_SPAN_LINK_COUNT_LIMIT", "128"),
    ("OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT", "128"),
    ("OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT", "no limit"),
)

#: Every variable OpenTelemetry's own code parses and Settings does not.
CHECKS: dict[str, Var] = {
    v.name: v
    for v in [
        *(Var(name, count(), default) for name, default in _LIMITS),
        Var("OTEL_BLRP_EXPORT_TIMEOUT", count(), "30000"),
        Var(
            "OTEL_PROPAGATORS",
            entry_point("opentelemetry_propagator", many=True, extra=("none",)),
            "tracecontext,baggage",
        ),
        Var("OTEL_PYTHON_CONTEXT", entry_point("opentelemetry_context"), "contextvars_context"),
        Var("OTEL_PYTHON_ID_GENERATOR", entry_point("opentelemetry_id_generator"), "random"),
        *(
            Var(
                f"OTEL_PYTHON_{kind.upper()}_PROVIDER",
                entry_point(f"opentelemetry_{kind}_provider"),
                f"the SDK's {kind} provider",
            )
            for kind in ("tracer", "meter", "logger")
        ),
        *(
            Var(
                f"OTEL_PYTHON_{kind.upper()}_CONFIGURATOR",
                entry_point(f"_opentelemetry_{kind}_configurator"),
                "the SDK's default",
            )
            for kind in ("tracer", "meter", "logger")
        ),
        Var("OTEL_PYTHON_DISTRO", entry_point("opentelemetry_distro"), "the first distro"),
        Var(
            "OTEL_PYTHON_CONFIGURATOR",
            entry_point("opentelemetry_configurator"),
            "the distro's configurator",
        ),
        Var(
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS",
            entry_point("opentelemetry_resource_detector", many=True),
            "otel",
        ),
        Var("OTEL_CONFIG_FILE", existing_file(), "no config file"),
        Var("OTEL_LOG_LEVEL", choice("debug", "info", "warn", "warning", "error"), "info"),
        Var(
            "OTEL_METRICS_EXEMPLAR_FILTER",
            choice("trace_based", "always_on", "always_off"),
            "trace_based",
        ),
        Var(
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
            choice("cumulative", "delta", "lowmemory"),
            "cumulative",
        ),
        Var(
            "OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION",
            choice("explicit_bucket_histogram", "base2_exponential_bucket_histogram"),
            "explicit_bucket_histogram",
        ),
        Var(
            "OTEL_PYTHON_EXPORTER_OTLP_GRPC_RETRYABLE_ERROR_CODES",
            names(*_GRPC_CODES),
            "UNAVAILABLE and the SDK's other transient codes",
        ),
        Var("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", boolean(), "false"),
        Var(
            "OTEL_SEMCONV_STABILITY_OPT_IN",
            names("http", "http/dup", "database", "database/dup", "gen_ai_latest_experimental"),
            "http (set by configure())",
        ),
        Var(
            "OTEL_PYTHON_AUTO_INSTRUMENTATION_EXPERIMENTAL_GEVENT_PATCH",
            choice("patch_all"),
            "no gevent patching",
        ),
        Var("OTEL_PYTHON_LOG_LEVEL", choice("debug", "info", "warning", "error"), "info"),
        Var(
            "OTEL_PYTHON_LOG_HANDLER_LEVEL",
            choice("notset", "debug", "info", "warning", "error", "critical"),
            "notset",
        ),
        Var("OTEL_PYTHON_LOG_CORRELATION", boolean(), "false"),
        Var("OTEL_PYTHON_LOG_AUTO_INSTRUMENTATION", boolean(), "true"),
        Var("OTEL_PYTHON_LOG_CODE_ATTRIBUTES", boolean(), "false"),
        Var("OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED", boolean(), "false"),
        Var("OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS", boolean(), "false"),
        *(
            Var(f"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_{part}", regex_list(), "none")
            for part in (
                "SANITIZE_FIELDS",
                "SERVER_REQUEST",
                "SERVER_RESPONSE",
                "CLIENT_REQUEST",
                "CLIENT_RESPONSE",
            )
        ),
        *_signal_vars(),
    ]
}

#: ``OTEL_PYTHON_<INSTRUMENTATION>_EXCLUDED_URLS``: regular expressions, compiled by
#: contrib's ``ExcludeList`` (a bad one raises inside the instrumentor). The FastAPI and
#: generic ones are read by Settings, which validates them itself.
_EXCLUDED_URLS = re.compile(r"OTEL_PYTHON_[A-Z0-9_]+_EXCLUDED_URLS")
SETTINGS_EXCLUDED_URLS = frozenset({"OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"})


def _entry_point_names(group: str) -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group=group)]


def lookup(name: str) -> Var | None:
    """The check for ``name``, including the ``OTEL_PYTHON_*_EXCLUDED_URLS`` family."""
    var = CHECKS.get(name)
    if var is None and _EXCLUDED_URLS.fullmatch(name) and name not in SETTINGS_EXCLUDED_URLS:
        var = Var(name, regex_list(), "nothing excluded")
    return var


def shown(value: str, *, secret: bool = False) -> str:
    """How a value appears in a warning: repr, truncated; secrets only by length."""
    if secret:
        return f"<{len(value)} characters, not shown>"
    text = value if len(value) <= _TRUNCATE else value[:_TRUNCATE] + "..."
    return repr(text)


def check(environ: MutableMapping[str, str]) -> list[str]:
    """Clean ``environ`` in place; log one warning per bad variable and return the names.

    Empty and whitespace-only ``OTEL_*`` values are removed without a warning.
    """
    warned: list[str] = []
    for name in sorted(k for k in environ if k.startswith("OTEL_")):
        value = environ[name]
        if value.strip() == "":
            del environ[name]
            continue
        var = lookup(name)
        if var is None:
            continue
        try:
            problem = var.check(value, environ)
        except Exception as exc:  # a broken check must never stop the process
            problem = (f"could not be checked: {type(exc).__name__}", None)
        if problem is None:
            continue
        reason, replacement = problem
        if replacement is None:
            del environ[name]
        else:
            environ[name] = replacement
        if not reason:
            continue
        warned.append(name)
        if replacement is None:
            instead = f"the default {var.default!r}"
        else:
            instead = shown(replacement, secret=var.secret)
        _log.warning(
            "invalid value %s=%s (%s); using %s",
            name,
            shown(value, secret=var.secret),
            reason,
            instead,
        )
    return warned


_done = False


def guard() -> list[str]:
    """Check ``os.environ`` once per process; later calls return at once.

    Returns:
        The variables warned about (empty on later calls).
    """
    global _done
    if _done:
        return []
    _done = True
    before = {k: os.environ.get(k) for k in _REDERIVE}
    try:
        warned = check(os.environ)
        _rederive(k for k, v in before.items() if os.environ.get(k) != v)
    except Exception:  # never break the import of the application
        _log.debug("environment guard failed", exc_info=True)
        return []
    return warned


def _rederive_propagators() -> None:
    propagate = sys.modules.get("opentelemetry.propagate")
    if propagate is not None:
        propagate.set_global_textmap(propagate._load_propagators())


def _rederive_context() -> None:
    context = sys.modules.get("opentelemetry.context")
    if context is not None:
        setattr(context, "_RUNTIME_CONTEXT", context._load_runtime_context())  # noqa: B010


def _rederive_span_limit() -> None:
    sdk_trace = sys.modules.get("opentelemetry.sdk.trace")
    if sdk_trace is not None:
        limit = sdk_trace.SpanLimits().max_span_attributes
        setattr(sdk_trace, "SPAN_ATTRIBUTE_COUNT_LIMIT", limit)  # noqa: B010


#: Module-level state OpenTelemetry derives at import time from these variables.
_REDERIVE: dict[str, Callable[[], None]] = {
    "OTEL_PROPAGATORS": _rederive_propagators,
    "OTEL_PYTHON_CONTEXT": _rederive_context,
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": _rederive_span_limit,
    "OTEL_ATTRIBUTE_COUNT_LIMIT": _rederive_span_limit,
}


def _rederive(changed: Iterable[str]) -> None:
    for fn in dict.fromkeys(_REDERIVE[name] for name in changed):
        try:
            fn()
        except Exception:
            _log.debug("re-deriving OpenTelemetry state failed", exc_info=True)
