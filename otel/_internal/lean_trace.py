"""A lean span behind the OpenTelemetry trace API: the same spans, a fraction of the work.

The SDK's ``Span`` takes about 26 µs to start and end on our 2-core machines (40 µs
with the nine attributes of a server span): a lock per call, a ``BoundedAttributes``
and two ``BoundedList`` per span, a generator-based context manager, a sampler result
object, and a fresh ``ReadableSpan`` copy handed to the processors at the end. A trading
gateway makes about 20 spans per order, so that machinery alone was a large part of
what telemetry cost an order.

:class:`LeanTracerProvider` is the SDK's ``TracerProvider`` (same processors, resource,
sampler, id generator, span limits, shutdown and flush) whose tracers make
:class:`LeanSpan` objects instead:

- a slotted span that is its own read-only view: it is handed to the processors as is,
  and its properties are those of the SDK's ``ReadableSpan`` (the exporters, the
  encoders and the console exporter read it the same way);
- attributes in a plain dict: values of the common types are stored directly, and
  anything else (sequences, mappings, ``None``, odd keys, a limit reached) goes through
  the SDK's public ``BoundedAttributes``, so the result is the SDK's own;
- events and links built by the SDK's public classes with the SDK's limits;
- ``start_as_current_span`` as a small context manager (it also decorates sync and
  async functions, like the SDK's);
- the sampler's decision taken without a result object when the sampler is
  ``always_on`` or ``parentbased_always_on`` (recognised by their public description);
  any other sampler is asked as the SDK asks it.

No private part of the SDK is used. ``TRADING_OTEL_LEAN_SPANS=false`` builds the SDK's
own ``TracerProvider`` instead; ``tests/unit/test_lean_trace.py`` checks that both
export the same OTLP for the same work.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as samp
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

# The SDK's logger names: the log handler never ships records from opentelemetry.*
# loggers over OTLP, and the SDK's own spans say the same things under these names.
_log = logging.getLogger("opentelemetry.sdk.trace")
_attributes_log = logging.getLogger("opentelemetry.attributes")
#: Ending a span is claimed under this lock: two threads ending one span export it once.
_END_LOCK = threading.Lock()
F = TypeVar("F", bound=Callable[..., Any])

_PLAIN = frozenset((str, bool, int, float))
_UNSET = Status(StatusCode.UNSET)
_MISSING = object()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)


def _shortcut(sampler: samp.Sampler) -> str | None:
    """``"always"`` or ``"parent"`` when the sampler's decision needs no call to it."""
    # The SDK's own classes only: a subclass may keep the description and decide otherwise.
    if type(sampler) not in (samp.StaticSampler, samp.ParentBased):
        return None
    description = sampler.get_description()  # type: ignore[no-untyped-call]
    if description == samp.ALWAYS_ON.get_description():  # type: ignore[no-untyped-call]
        return "always"
    if description == samp.ParentBased(samp.ALWAYS_ON).get_description():  # type: ignore[no-untyped-call]
        return "parent"
    return None


class LeanTracerProvider(TracerProvider):
    """The SDK's ``TracerProvider``, whose tracers make :class:`LeanSpan` objects."""

    def __init__(
        self,
        *,
        sampler: samp.Sampler,
        resource: Resource,
        span_limits: SpanLimits | None = None,
        shutdown_on_exit: bool = False,
    ) -> None:
        limits = span_limits or SpanLimits()
        super().__init__(
            sampler=sampler,
            resource=resource,
            span_limits=limits,
            shutdown_on_exit=shutdown_on_exit,
        )
        self.limits = limits
        self.shortcut = _shortcut(sampler)
        self.starting: tuple[SpanProcessor, ...] = ()
        self.ending: tuple[SpanProcessor, ...] = ()
        #: Processors with the SDK's ``_on_ending`` hook, called before any ``on_end``.
        self.ending_hooks: tuple[SpanProcessor, ...] = ()
        self._lean_tracers: dict[tuple[str, str, str | None], LeanTracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        if not instrumenting_module_name:
            instrumenting_module_name = ""
            _log.error("get_tracer called with missing module name.")
        version = instrumenting_library_version or ""
        key = (instrumenting_module_name, version, schema_url)
        tracer = None if attributes else self._lean_tracers.get(key)
        if tracer is None:
            scope = InstrumentationScope(instrumenting_module_name, version, schema_url, attributes)
            tracer = LeanTracer(self, scope)
            if not attributes:  # scopes with attributes get a tracer per call
                tracer = self._lean_tracers.setdefault(key, tracer)
        return tracer

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        # The base class's hooks do nothing: those are skipped on the request path. Hooks
        # are looked up on the instance (mocks and wrappers included); in doubt, called.
        starts = _overrides(span_processor, "on_start")
        ending = _overrides(span_processor, "_on_ending")
        ends = _overrides(span_processor, "on_end")
        super().add_span_processor(span_processor)
        if starts:
            self.starting = (*self.starting, span_processor)
        if ending:
            self.ending_hooks = (*self.ending_hooks, span_processor)
        if ends:
            self.ending = (*self.ending, span_processor)


def _overrides(processor: SpanProcessor, name: str) -> bool:
    method = getattr(processor, name, None)
    return getattr(method, "__func__", method) is not getattr(SpanProcessor, name, None)


class LeanTracer(trace_api.Tracer):
    """Starts :class:`LeanSpan` objects for one instrumentation scope."""

    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self._provider = provider
        self._scope = scope

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        provider = self._provider
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        if parent is not None and not isinstance(parent, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        ids = provider.id_generator
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        links = links or ()
        shortcut = provider.shortcut
        if shortcut is not None and (
            shortcut == "always" or parent is None or parent.trace_flags.sampled
        ):
            sampled = True
            trace_state = None if parent is None else parent.trace_state
        elif shortcut == "parent":
            sampled = False
            trace_state = parent.trace_state if parent is not None else None
        else:
            result = provider.sampler.should_sample(
                context, trace_id, name, kind, attributes, links
            )
            if result.decision.is_sampled():  # type: ignore[no-untyped-call]
                sampled = True
            elif result.decision.is_recording():  # type: ignore[no-untyped-call]
                sampled = False
            else:
                sampled = None  # a NonRecordingSpan
            attributes = result.attributes
            trace_state = result.trace_state
        if random_id:
            flags = _SAMPLED_RANDOM if sampled else _NOT_SAMPLED_RANDOM
        else:
            flags = _SAMPLED if sampled else _NOT_SAMPLED
        span_context = SpanContext(trace_id, ids.generate_span_id(), False, flags, trace_state)
        if sampled is None or (sampled is False and shortcut is not None):
            return trace_api.NonRecordingSpan(span_context)
        span = LeanSpan(
            name,
            span_context,
            parent,
            kind,
            provider,
            self._scope,
            attributes,
            links,
            record_exception,
            set_status_on_exception,
        )
        span._start_time = start_time if start_time is not None else time_ns()
        for processor in provider.starting:
            processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan:
        return CurrentSpan(
            self,
            (name, context, kind, attributes, links, start_time, record_exception,
             set_status_on_exception),
            end_on_exit,
        )  # fmt: skip


class CurrentSpan:
    """``start_as_current_span``: a context manager, and a decorator of sync or async functions.

    On an ``Exception`` (not a ``BaseException`` such as ``GeneratorExit``) it records the
    exception and sets an error status, as the API's ``use_span`` does.
    """

    __slots__ = ("_args", "_end_on_exit", "_span", "_token", "_tracer")

    def __init__(self, tracer: LeanTracer, args: tuple[Any, ...], end_on_exit: bool) -> None:
        self._tracer = tracer
        self._args = args
        self._end_on_exit = end_on_exit
        self._span: trace_api.Span | None = None
        self._token: object = None

    def __enter__(self) -> trace_api.Span:
        if self._span is not None:
            raise RuntimeError("a start_as_current_span(...) context can be entered once")
        span = self._span = self._tracer.start_span(*self._args)
        self._token = context_api.attach(trace_api.set_span_in_context(span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        assert span is not None
        context_api.detach(self._token)  # type: ignore[arg-type]
        try:
            if isinstance(exc, Exception) and span.is_recording():
                if self._args[6]:
                    span.record_exception(exc)
                if self._args[7]:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            if self._end_on_exit:
                span.end()

    def __call__(self, func: F) -> F:
        tracer, args, end_on_exit = self._tracer, self._args, self._end_on_exit
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*a: Any, **kw: Any) -> Any:
                with CurrentSpan(tracer, args, end_on_exit):
                    return await func(*a, **kw)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*a: Any, **kw: Any) -> Any:
            with CurrentSpan(tracer, args, end_on_exit):
                return func(*a, **kw)

        return run  # type: ignore[return-value]


def _bounded(
    limit: int | None, attributes: types.Attributes, value_len: int | None
) -> BoundedAttributes:
    return BoundedAttributes(limit, attributes, immutable=True, max_value_len=value_len)


class LeanSpan(trace_api.Span):
    """A recording span that is also the read-only view its processors and exporters get.

    The attribute names are those the SDK's ``ReadableSpan`` keeps its data under, so a
    processor written against the SDK's span (our scrubber) sees the same layout.
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_dropped_attributes",
        "_dropped_events",
        "_dropped_links",
        "_end_time",
        "_events",
        "_instrumentation_scope",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_provider",
        "_record_exception",
        "_resource",
        "_set_status_on_exception",
        "_start_time",
        "_status",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        provider: LeanTracerProvider,
        scope: InstrumentationScope,
        attributes: types.Attributes,
        links: Sequence[Link],
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._provider = provider
        self._resource = provider.resource
        self._instrumentation_scope = scope
        self._attributes: dict[str, Any] = {}
        self._dropped_attributes = 0
        self._events: list[Event] = []
        self._dropped_events = 0
        self._links: list[Link] = []
        self._dropped_links = 0
        self._status = _UNSET
        self._start_time: int | None = None
        self._end_time: int | None = None
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        if attributes:
            self._set_many(attributes)
        if links:
            self._start_links(links)

    # -- attributes ------------------------------------------------------------------

    def _plain(self, key: object, value: object) -> bool:
        # Stored as given, exactly as the SDK would store it.
        max_len = self._provider.limits.max_span_attribute_length
        kind = type(value)
        return (
            type(key) is str
            and bool(key)
            and kind in _PLAIN
            and (max_len is None or kind is not str or len(value) <= max_len)  # type: ignore[arg-type]
        )

    def _put(self, key: str, value: Any) -> None:
        store = self._attributes
        if store.pop(key, _MISSING) is _MISSING:
            limit = self._provider.limits.max_span_attributes
            if limit is not None and len(store) >= limit:
                if not limit:
                    self._dropped_attributes += 1
                    return
                _attributes_log.warning(
                    "Attributes dict is full. Dropping the oldest key-value pair from "
                    "attributes to make space for the new key-value pair."
                )
                # Another thread may evict the same key: pop, never del.
                store.pop(next(iter(store), None), None)  # type: ignore[arg-type]
                self._dropped_attributes += 1
        store[key] = value

    def _set_many(self, attributes: Mapping[str, Any]) -> None:
        max_len = self._provider.limits.max_span_attribute_length
        for key, value in attributes.items():
            kind = type(value)
            if (
                type(key) is not str
                or not key
                or kind not in _PLAIN
                or (kind is str and max_len is not None and len(value) > max_len)
            ):
                break
        else:
            store = self._attributes
            limit = self._provider.limits.max_span_attributes
            if not store and (limit is None or len(attributes) <= limit):
                store.update(attributes)  # the usual case: a new span's attributes
                return
            for key, value in attributes.items():
                self._put(key, value)
            return
        # Anything unusual is cleaned by the SDK's own public BoundedAttributes.
        cleaned = BoundedAttributes(None, attributes, immutable=False, max_value_len=max_len)
        self._dropped_attributes += len(attributes) - len(cleaned)
        for key, value in cleaned.copy().items():
            self._put(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            _log.warning("Setting attribute on ended span.")
            return
        self._set_many(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self._end_time is not None:
            _log.warning("Setting attribute on ended span.")
            return
        if self._plain(key, value):
            self._put(key, value)
            return
        max_len = self._provider.limits.max_span_attribute_length
        cleaned = BoundedAttributes(None, immutable=False, max_value_len=max_len)
        cleaned[key] = value  # drops (and warns about) a bad key, as the SDK does
        if key in cleaned:
            self._put(key, cleaned[key])
        else:
            self._dropped_attributes += 1

    # -- events, links, status -----------------------------------------------------------

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            _log.warning("Tried calling %s on an ended span.", "_add_event")
            return
        limits = self._provider.limits
        event = Event(
            name,
            _bounded(limits.max_event_attributes, attributes, limits.max_attribute_length),
            timestamp,
        )
        max_events = limits.max_events
        if max_events is not None and len(self._events) >= max_events:
            self._dropped_events += 1
            if not max_events:
                return
            del self._events[0]
        self._events.append(event)

    def _start_links(self, links: Sequence[Link]) -> None:
        for link in links:
            if link and _valid_link(link.context, link.attributes):
                self._append_link(link.context, link.attributes)

    def _append_link(self, context: SpanContext, attributes: types.Attributes) -> None:
        limits = self._provider.limits
        link = Link(
            context,
            _bounded(limits.max_link_attributes, attributes, limits.max_attribute_length),
        )
        max_links = limits.max_links
        if max_links is not None and len(self._links) >= max_links:
            self._dropped_links += 1
            if not max_links:
                return
            del self._links[0]
        self._links.append(link)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not _valid_link(context, attributes):
            return
        if self._end_time is not None:
            _log.warning("Tried calling %s on an ended span.", "_add_link")
            return
        self._append_link(context, attributes)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None:
            _log.warning("Tried calling %s on an ended span.", "set_status")
            return
        # An OK status is final; UNSET is never set.
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                _log.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif isinstance(status, StatusCode):
            if status is StatusCode.UNSET:
                return
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        attrs: dict[str, Any] = {
            "exception.type": (
                f"{module}.{kind.__qualname__}"
                if module and module != "builtins"
                else kind.__qualname__
            ),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def update_name(self, name: str) -> None:
        if self._end_time is not None:
            _log.warning("Tried calling %s on an ended span.", "update_name")
            return
        self._name = name

    # -- life ------------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end_time is None

    def end(self, end_time: int | None = None) -> None:
        with _END_LOCK:
            ended = self._end_time is not None
            if not ended:
                self._end_time = end_time if end_time is not None else time_ns()
        if ended:
            _log.warning("Calling end() on an ended span.")
            return
        provider = self._provider
        for processor in provider.ending_hooks:
            processor._on_ending(self)  # type: ignore[arg-type]
        for processor in provider.ending:
            processor.on_end(self)  # type: ignore[arg-type]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self._end_time is None:
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'

    # -- the ReadableSpan view -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def context(self) -> SpanContext:
        return self._context

    @property
    def kind(self) -> SpanKind:
        return self._kind

    @property
    def parent(self) -> SpanContext | None:
        return self._parent

    @property
    def start_time(self) -> int | None:
        return self._start_time

    @property
    def end_time(self) -> int | None:
        return self._end_time

    @property
    def status(self) -> Status:
        return self._status

    @property
    def attributes(self) -> types.Attributes:
        return MappingProxyType(self._attributes)

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    @property
    def links(self) -> Sequence[Link]:
        return tuple(self._links)

    @property
    def resource(self) -> Resource:
        return self._resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope | None:
        return self._instrumentation_scope

    @property
    def instrumentation_info(self) -> None:
        return None

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        return self._dropped_links

    def readable(self) -> ReadableSpan:
        """The SDK's own ``ReadableSpan`` with this span's data (for code that needs one)."""
        return ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=self._resource,
            attributes=BoundedAttributes(None, self._attributes, immutable=True),
            events=self._events,
            links=self._links,
            kind=self._kind,
            status=self._status,
            start_time=self._start_time,
            end_time=self._end_time,
            instrumentation_scope=self._instrumentation_scope,
        )

    def to_json(self, indent: int | None = 4) -> str:
        return str(self.readable().to_json(indent))


def _valid_link(context: SpanContext | None, attributes: types.Attributes) -> bool:
    # The SDK keeps a link whose context is valid, or that says something anyway.
    return bool(context and (context.is_valid or attributes or context.trace_state))


class _Probe(SpanProcessor):
    def __init__(self) -> None:
        self.ended: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


def lean_provider(sampler: samp.Sampler, resource: Resource) -> LeanTracerProvider:
    """A :class:`LeanTracerProvider`, once a probe span has gone through it intact.

    Raises:
        RuntimeError: when this SDK's or API's shape is not the one the lean span needs
            (the caller then builds the SDK's own provider).
    """
    probe = LeanTracerProvider(sampler=samp.ALWAYS_ON, resource=resource)
    seen = _Probe()
    probe.add_span_processor(seen)
    tracer = probe.get_tracer("otel.probe")
    with tracer.start_as_current_span("probe", attributes={"a": 1}) as span:
        span.set_attribute("b", ("x",))
        if trace_api.get_current_span() is not span:
            raise RuntimeError("the lean span is not the current span")
    ended = seen.ended
    if len(ended) != 1 or dict(ended[0].attributes or {}) != {"a": 1, "b": ("x",)}:
        raise RuntimeError("the lean span did not reach its processor intact")
    if not ended[0].context.trace_flags.sampled or ended[0].end_time is None:
        raise RuntimeError("the lean span's context or end time is wrong")
    return LeanTracerProvider(sampler=sampler, resource=resource)
