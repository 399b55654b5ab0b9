"""A pre-bound recording path for the trading meters, and a lean exemplar reservoir.

Why: ``opentelemetry-sdk`` 1.45.1 spends most of ``Histogram.record`` re-validating and
re-hashing the same attribute dict on every call (``Measurement.__post_init__`` cleans it
recursively, ``_hash_attributes`` walks it with ABC ``isinstance`` checks, the view copies
it). The trading meters already validate attributes once per distinct set, so a
:class:`BoundRecorder` resolves the SDK aggregation objects for its attribute set once and
then feeds them measurements directly: the same aggregation code, the same exemplar filter,
without the per-call attribute work.

The SDK internals this touches are private. They are looked up on first use, never when
``otel`` is imported, and defensively: if the shape is not what 1.45.x has (another SDK
version, a proxy or no-op provider, a disabled meter), the recorder silently uses the
public ``record``/``add``/``set`` instead, so the worst case is the SDK's own speed, never a
lost or wrong measurement. ``TRADING_OTEL_LEAN_METRICS=false`` (:func:`use_stock_recording`)
chooses that public path on purpose.
"""

from __future__ import annotations

import math
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.metrics import Exemplar, ExemplarReservoir, TraceBasedExemplarFilter
from opentelemetry.util.types import Attributes

#: Meter providers built with ``TRADING_OTEL_LEAN_METRICS=false``: their meters record
#: through the SDK's public instruments only.
_stock_providers: weakref.WeakSet[Any] = weakref.WeakSet()


def use_stock_recording(meter_provider: object) -> None:
    """Record every measurement on ``meter_provider`` through the SDK's public API."""
    _stock_providers.add(meter_provider)


def is_lean(meter_provider: object) -> bool:
    """False when ``meter_provider`` was switched to the SDK's own recording path."""
    try:
        return meter_provider not in _stock_providers
    except TypeError:  # not weak-referenceable: never registered
        return True


class _Internals:
    """The SDK's private names the pre-bound path uses, looked up on first use, not at import.

    ``hash_attributes`` is the SDK's attribute key (``_view_instrument_match``);
    ``span_key`` the context key of the current span. Either may be missing in another
    SDK version: then recorders stay on the public path and the filter check uses
    ``trace.get_current_span``.
    """

    resolved = False
    hash_attributes: Callable[[Any], Any] | None = None
    span_key: Any = None

    @classmethod
    def resolve(cls) -> None:
        if cls.resolved:
            return
        cls.resolved = True
        try:
            from opentelemetry.sdk.metrics._internal import _view_instrument_match as vim

            cls.hash_attributes = vim._hash_attributes
        except (ImportError, AttributeError):  # pragma: no cover - depends on the SDK
            cls.hash_attributes = None
        try:
            from opentelemetry.trace import propagation

            cls.span_key = propagation._SPAN_KEY
        except (ImportError, AttributeError):  # pragma: no cover - depends on the API
            cls.span_key = None


class LeanBucketReservoir(ExemplarReservoir):
    """Keeps the last measurement per histogram bucket, like the SDK's aligned reservoir.

    The difference is when the work happens: :meth:`offer` only stores the value, time
    and context (one bisect), and the span context is read at collection time, once per
    bucket per scrape instead of once per measurement.
    """

    def __init__(self, boundaries: Sequence[float] = (), **kwargs: Any) -> None:
        self._bounds = tuple(boundaries)
        self._slots: list[tuple[float, int, Attributes, Context] | None] = [None] * (
            len(self._bounds) + 1
        )
        self._lock = threading.Lock()

    def offer(
        self, value: float, time_unix_nano: int, attributes: Attributes, context: Context
    ) -> None:
        # A single list store is atomic under the GIL; collect swaps the list under a lock.
        self._slots[bisect_left(self._bounds, value)] = (value, time_unix_nano, attributes, context)

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        with self._lock:
            slots, self._slots = self._slots, [None] * (len(self._bounds) + 1)
        out: list[Exemplar] = []
        for slot in slots:
            if slot is None:
                continue
            value, ts, attrs, ctx = slot
            sc = trace.get_current_span(ctx).get_span_context()
            filtered = (
                {k: v for k, v in attrs.items() if k not in (point_attributes or {})}
                if attrs
                else None
            )
            out.append(
                Exemplar(
                    filtered or None,
                    value,
                    ts,
                    sc.span_id if sc.is_valid else None,
                    sc.trace_id if sc.is_valid else None,
                )
            )
        return out


def lean_reservoir_factory(aggregation_type: type) -> Callable[..., ExemplarReservoir]:
    """``View(exemplar_reservoir_factory=...)`` for explicit-bucket histograms."""
    return LeanBucketReservoir


#: Marker for "the filter is the SDK's trace-based one" (checked by identity per call).
_TRACE_BASED: Any = object()


class _Measurement:
    """Duck-types the SDK's ``Measurement`` for ``_Aggregation.aggregate``.

    The SDK's own dataclass re-cleans the attributes in ``__post_init__``; ours were
    cleaned once when the recorder was bound.
    """

    __slots__ = ("attributes", "context", "instrument", "time_unix_nano", "value")

    def __init__(
        self, value: float, t: int, instrument: object, context: Context, attrs: Attributes
    ) -> None:
        self.value = value
        self.time_unix_nano = t
        self.instrument = instrument
        self.context = context
        self.attributes = attrs


class BoundRecorder:
    """Records measurements for one instrument and one fixed, validated attribute set.

    Args:
        instrument: The SDK (or API) synchronous instrument.
        method: Its public recording method name: ``record``, ``add`` or ``set``.
        attributes: The validated attributes; never mutated afterwards.
        non_negative: Whether negative values are invalid (counters, histograms); those go
            to the public method so the SDK warns and drops them as usual.
        lean: False records every value through the public method (the SDK's own path).
    """

    __slots__ = (
        "_aggs",
        "_consumer",
        "_filter",
        "_public",
        "_storages",
        "attributes",
        "instrument",
        "non_negative",
    )

    def __init__(
        self,
        instrument: Any,
        method: str,
        attributes: Mapping[str, str],
        non_negative: bool,
        lean: bool = True,
    ) -> None:
        self.instrument = instrument
        self.attributes = attributes
        self.non_negative = non_negative
        self._public: Callable[[float, Mapping[str, str]], None] = getattr(instrument, method)
        # No consumer: never resolved, so every call takes the public method.
        self._consumer: Any = getattr(instrument, "_measurement_consumer", None) if lean else None
        self._filter: Any = None
        self._storages: object = None
        self._aggs: tuple[Any, ...] = ()

    def __call__(self, value: float) -> None:
        """Record ``value`` (the same call for counters, histograms and gauges)."""
        storages = self._storages
        if (
            storages is None
            or storages is not self._consumer._reader_storages
            or (self.non_negative and value < 0)
            or not math.isfinite(value)
        ):
            self._slow(value)
            return
        ctx = get_current()
        t = time_ns()
        attrs = self.attributes
        measurement = _Measurement(value, t, self.instrument, ctx, attrs)
        flt = self._filter
        if flt is _TRACE_BASED:
            # TraceBasedExemplarFilter.should_sample, inlined: it was a third of the call.
            span: Any = ctx.get(_Internals.span_key)
            try:
                sample = span is not None and span.get_span_context().trace_flags.sampled
            except AttributeError:
                sample = False
        else:
            sample = flt.should_sample(value, t, attrs, ctx)
        for agg in self._aggs:
            agg.aggregate(measurement, sample)

    def _slow(self, value: float) -> None:
        # The public path creates the aggregations on first use; resolve them afterwards.
        self._public(value, self.attributes)
        self._storages = None
        if self._consumer is not None:
            self._resolve()

    def _resolve(self) -> None:
        _Internals.resolve()
        hash_attributes = _Internals.hash_attributes
        try:
            if hash_attributes is None or not self.instrument._is_enabled():
                return
            consumer = self._consumer
            storages = consumer._reader_storages
            sdk_config = getattr(consumer, "_sdk_config", None)
            exemplar_filter = getattr(sdk_config, "exemplar_filter", None)
            if exemplar_filter is None:
                return
            aggs = []
            for storage in storages.values():
                matches = storage._instrument_view_instrument_matches.get(self.instrument)
                if matches is None:
                    return
                for match in matches:
                    keys = match._view._attribute_keys
                    attrs = dict(self.attributes)
                    if keys is not None:
                        attrs = {k: v for k, v in attrs.items() if k in keys}
                    agg = match._attributes_aggregation.get(hash_attributes(attrs))
                    if agg is None:
                        return
                    aggs.append(agg)
        except (AttributeError, TypeError):
            return  # not the SDK shape we know: stay on the public path
        self._aggs = tuple(aggs)
        trace_based = type(exemplar_filter) is TraceBasedExemplarFilter
        self._filter = (
            _TRACE_BASED if trace_based and _Internals.span_key is not None else exemplar_filter
        )
        self._storages = storages


class CachedRecorder:
    """``record(value, attributes)`` for any SDK instrument, with one bound set per attributes.

    For instruments outside the catalogue whose attribute sets repeat (e.g. the HTTP
    server duration: route, method, status). Past ``max_sets`` distinct sets, or for
    unhashable attribute values, it records through the public method.

    Args:
        instrument: A synchronous instrument.
        method: ``record``, ``add`` or ``set``.
        non_negative: True for histograms and counters.
        max_sets: Bound on cached attribute sets.
        lean: False records through the public method only (the SDK's own path).
    """

    __slots__ = ("_cache", "_method", "_public", "instrument", "lean", "max_sets", "non_negative")

    def __init__(
        self,
        instrument: Any,
        method: str = "record",
        non_negative: bool = True,
        max_sets: int = 2000,
        lean: bool = True,
    ) -> None:
        self.instrument = instrument
        self.lean = lean
        self._method = method
        self._public: Callable[[float, Mapping[str, Any]], None] = getattr(instrument, method)
        self.non_negative = non_negative
        self.max_sets = max_sets
        self._cache: dict[tuple[tuple[str, Any], ...], BoundRecorder] = {}

    def __call__(self, value: float, attributes: Mapping[str, Any]) -> None:
        """Record ``value`` with ``attributes`` (not mutated, not kept by reference)."""
        key = tuple(attributes.items())
        try:
            bound = self._cache.get(key)
        except TypeError:  # an unhashable value, e.g. a list attribute
            self._public(value, attributes)
            return
        if bound is None:
            if not self.lean or len(self._cache) >= self.max_sets:
                self._public(value, attributes)
                return
            bound = BoundRecorder(
                self.instrument, self._method, dict(attributes), self.non_negative
            )
            self._cache[key] = bound
        bound(value)

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        """Same as calling the recorder: a drop-in for ``Histogram.record``."""
        self(value, attributes)
