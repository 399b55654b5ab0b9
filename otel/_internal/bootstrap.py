"""``configure()`` and ``shutdown()``: the providers, their exporters, and a bounded exit."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as samp

from otel._internal import envguard, exporters, scrub
from otel._internal.resource import build_resource
from otel._internal.settings import Settings
from otel._internal.views import all_views

_log = logging.getLogger("otel.config")


def make_sampler(settings: Settings) -> samp.Sampler:
    """The sampler named by OTEL_TRACES_SAMPLER (already validated)."""
    ratio = samp.TraceIdRatioBased(settings.sampler_arg)
    return {
        "always_on": samp.ALWAYS_ON,
        "always_off": samp.ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": samp.ParentBased(samp.ALWAYS_ON),
        "parentbased_always_off": samp.ParentBased(samp.ALWAYS_OFF),
        "parentbased_traceidratio": samp.ParentBased(ratio),
    }[settings.sampler]


@dataclass
class Telemetry:
    """The providers built by one ``configure()``, and how to stop them."""

    settings: Settings
    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider | None
    metric_readers: list[MetricReader] = field(default_factory=list)
    """Readers in use, e.g. the Prometheus endpoint (its ``port`` is the bound one)."""
    pid: int = field(default_factory=os.getpid)
    undo: list[Callable[[], None]] = field(default_factory=list)

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush and stop every provider within ``timeout_s`` seconds, whatever the network.

        The SDK's own shutdown can block for 30 s per signal when the collector is
        black-holed (and ``force_flush`` ignores its timeout, opentelemetry-python
        #4568), so each provider stops in its own daemon thread and we wait for all of
        them up to one shared deadline. What is still in flight then is abandoned.

        Returns:
            True when every provider finished in time.
        """
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        for step in reversed(self.undo):
            try:
                step()
            except Exception:
                _log.exception("undoing instrumentation failed")
        self.undo.clear()
        ms = max(timeout, 0.0) * 1000
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("traces", self.tracer_provider.shutdown),
            ("metrics", lambda: self.meter_provider.shutdown(timeout_millis=ms)),
        ]
        if self.logger_provider is not None:
            jobs.append(("logs", self.logger_provider.shutdown))
        return _bounded("shutdown", jobs, timeout)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Export everything buffered, waiting at most ``timeout_s`` seconds.

        Used at the end of an app's lifespan: a server that exits by re-raising SIGTERM
        (uvicorn does) never runs ``atexit`` hooks.
        """
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        ms = int(max(timeout, 0.0) * 1000)
        jobs: list[tuple[str, Callable[[], Any]]] = [
            ("traces", lambda: self.tracer_provider.force_flush(ms)),
            ("metrics", lambda: self.meter_provider.force_flush(ms)),
        ]
        if self.logger_provider is not None:
            logger_provider = self.logger_provider
            jobs.append(("logs", lambda: logger_provider.force_flush(ms)))
        return _bounded("flush", jobs, timeout)


def _bounded(what: str, jobs: list[tuple[str, Callable[[], Any]]], timeout: float) -> bool:
    # Each signal in its own daemon thread, one shared deadline: a black-holed collector
    # can delay one signal but never the process, and never the other signals.
    threads = [
        threading.Thread(target=_quietly(name, job), name=f"otel-{what}-{name}", daemon=True)
        for name, job in jobs
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    late = [t.name.rsplit("-", 1)[-1] for t in threads if t.is_alive()]
    if late:
        _log.warning(
            "telemetry %s gave up after %.1fs (TRADING_OTEL_SHUTDOWN_TIMEOUT); "
            "unexported %s dropped: is the collector reachable?",
            what,
            timeout,
            ", ".join(late),
        )
    return not late


def _quietly(name: str, job: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:
            _log.exception("shutting down %s failed", name)

    return run


def _tracer_provider(settings: Settings, resource: Resource) -> TracerProvider:
    sampler = make_sampler(settings)
    if settings.lean_spans:
        try:
            from otel._internal.lean_trace import lean_provider

            return lean_provider(sampler, resource)
        except Exception:
            _log.warning(
                "lean spans are not available with this opentelemetry-sdk; "
                "using the SDK's own spans",
                exc_info=True,
            )
    return TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)


def build(
    settings: Settings,
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    extra_span_processors: Sequence[SpanProcessor] = (),
    extra_metric_readers: Sequence[MetricReader] = (),
    extra_log_processors: Sequence[LogRecordProcessor] = (),
) -> Telemetry:
    """Build providers from ``settings`` without touching any global state.

    ``extra_*`` add processors/readers next to the configured exporters (tests use
    in-memory ones).
    """
    resource = build_resource(settings, service_name=service_name, service_version=service_version)
    tracer_provider = _tracer_provider(settings, resource)
    # The scrubbers come first: later processors may hand the span/record to another thread.
    for processor in [
        scrub.span_scrubber(),
        *exporters.span_processors(settings),
        *extra_span_processors,
    ]:
        tracer_provider.add_span_processor(processor)
    readers = [*exporters.metric_readers(settings), *extra_metric_readers]
    meter_provider = MeterProvider(
        metric_readers=readers,
        resource=resource,
        views=all_views(settings.lean_metrics),
        exemplar_filter=TraceBasedExemplarFilter(),
        shutdown_on_exit=False,
    )
    if not settings.lean_metrics:
        from otel._internal.recording import use_stock_recording

        use_stock_recording(meter_provider)
    logger_provider = None
    log_processors = [*exporters.log_processors(settings), *extra_log_processors]
    if log_processors:
        logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        for lp in [scrub.LogScrubber(), *log_processors]:
            logger_provider.add_log_record_processor(lp)
    return Telemetry(settings, resource, tracer_provider, meter_provider, logger_provider, readers)


def instrument(telemetry: Telemetry) -> None:
    """Wire ``telemetry`` into FastAPI, the client libraries and logging."""
    from otel._internal import sanitize
    from otel._internal.instrumentation import instrument_libraries
    from otel._internal.logs import setup_logging

    s = telemetry.settings
    disabled = s.disabled_instrumentations
    # Stable HTTP conventions: http.client.request.duration in seconds (with our view)
    # instead of the old millisecond http.client.duration. An explicit choice stays.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    off = "fastapi" in disabled or "*" in disabled
    # Installed even when disabled: with global providers set, FastAPI would otherwise
    # switch its own telemetry on.
    try:
        from otel._internal import server_telemetry
    except ImportError:  # no `fastapi` extra: there is no server path to instrument
        server_telemetry = None  # type: ignore[assignment]
    server = (
        None
        if server_telemetry is None
        else server_telemetry.ServerTelemetry(
            None if off else telemetry.tracer_provider,
            None if off else telemetry.meter_provider,
            excluded=s.excluded_paths_regex(),
            operation_spans=s.fastapi_operation_spans,
            flush=flush,
        )
    )
    telemetry.undo.append(sanitize.set_sensitive_params(s.redact_query_params))
    if server_telemetry is not None and server is not None:
        telemetry.undo.append(server_telemetry.install(server, lean=s.lean_server))
    telemetry.undo.append(
        instrument_libraries(telemetry.tracer_provider, telemetry.meter_provider, disabled)
    )
    shipping = None if "logging" in disabled else telemetry.logger_provider
    telemetry.undo.append(setup_logging(s, shipping))


_lock = threading.Lock()
_current: Telemetry | None = None
_state = "new"  # new | configured | disabled | shut down


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Telemetry | None:
    """Set up traces, metrics, logs and auto-instrumentation from the environment.

    Call it once per process, early (a FastAPI lifespan is the usual place: it runs in
    each worker, after the fork). Later calls return the first result. It never raises
    for bad configuration: bad values warn and fall back to defaults, and a failure
    while building the pipeline leaves the service running uninstrumented.

    Args:
        service_name: Name used when neither OTEL_SERVICE_NAME nor
            OTEL_RESOURCE_ATTRIBUTES gives ``service.name``.
        service_version: ``service.version``, unless OTEL_RESOURCE_ATTRIBUTES sets it.
        environ: Variables to read instead of ``os.environ``.

    Returns:
        The live :class:`Telemetry`, or None when OTEL_SDK_DISABLED=true or setup failed.
    """
    global _current, _state
    envguard.guard()
    with _lock:
        if _state != "new":
            # After a fork the providers are inherited; resource.py has already given
            # this process its own service.instance.id.
            return _current
        settings = Settings.from_env(os.environ if environ is None else environ)
        if settings.sdk_disabled:
            _state = "disabled"
            return None
        try:
            telemetry = build(settings, service_name=service_name, service_version=service_version)
        except Exception:
            _state = "disabled"
            _log.exception("telemetry setup failed; the service runs uninstrumented")
            return None
        trace.set_tracer_provider(telemetry.tracer_provider)
        metrics.set_meter_provider(telemetry.meter_provider)
        if telemetry.logger_provider is not None:
            _logs.set_logger_provider(telemetry.logger_provider)
        try:
            from otel._internal import meters

            meters.set_symbols(settings.symbols or None, settings.symbol_cap)
            instrument(telemetry)
        except Exception:
            _log.exception("instrumentation failed; telemetry continues without it")
        _current, _state = telemetry, "configured"
        atexit.register(shutdown)
        return telemetry


def shutdown(timeout_s: float | None = None) -> bool:
    """Flush and stop telemetry within TRADING_OTEL_SHUTDOWN_TIMEOUT (or ``timeout_s``).

    Safe to call more than once, and when ``configure()`` never ran.

    Returns:
        True when everything was flushed in time (or there was nothing to flush).
    """
    global _current, _state
    with _lock:
        telemetry, _current = _current, None
        if _state == "configured":
            _state = "shut down"
    if telemetry is None:
        return True
    return telemetry.shutdown(timeout_s)


def flush(timeout_s: float | None = None) -> bool:
    """Export what is buffered, within TRADING_OTEL_SHUTDOWN_TIMEOUT; telemetry stays on."""
    telemetry = _current
    return True if telemetry is None else telemetry.flush(timeout_s)


def current() -> Telemetry | None:
    """The telemetry set up by ``configure()`` in this process, if any."""
    return _current
