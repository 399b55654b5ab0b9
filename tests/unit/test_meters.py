"""Trading meters: declarations, attribute guards, order_timer, the fast path and rebinding."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider

from otel._internal import meters as meters_mod
from otel._internal.catalogue import BY_KEY, CATALOGUE, OTHER_SYMBOL
from otel._internal.meters import (
    FORBIDDEN_ATTRIBUTES,
    SymbolGuard,
    TradingMeters,
    get_meters,
    order_timer,
)
from otel._internal.views import histogram_views


@dataclass
class Sdk:
    reader: InMemoryMetricReader
    provider: MeterProvider
    meters: TradingMeters
    tracer_provider: TracerProvider

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == name
            for p in m.data.data_points
        ]


def make_sdk(symbols: SymbolGuard | None = None) -> Sdk:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=histogram_views())
    return Sdk(
        reader, provider, TradingMeters(provider, symbols or SymbolGuard(None)), TracerProvider()
    )


@pytest.fixture
def sdk() -> Iterator[Sdk]:
    s = make_sdk()
    yield s
    s.provider.shutdown()


def attrs_of(point: Any) -> dict[str, Any]:
    return dict(point.attributes)


# --- declarations -------------------------------------------------------------------------


def test_one_attribute_per_catalogue_key(sdk: Sdk) -> None:
    declared = set(TradingMeters.__annotations__)
    assert declared == {spec.key for spec in CATALOGUE}
    for spec in CATALOGUE:
        assert getattr(sdk.meters, spec.key).spec is spec


def test_histogram_views_use_catalogue_buckets(sdk: Sdk) -> None:
    views = {v._instrument_name: v for v in histogram_views()}
    histograms = [s for s in CATALOGUE if s.kind == "histogram"]
    assert set(views) == {s.name for s in histograms}
    for spec in histograms:
        assert spec.buckets is not None
        getattr(sdk.meters, spec.key).record(spec.buckets[0] / 2)
        [point] = sdk.points(spec.name)
        assert isinstance(point, HistogramDataPoint)
        assert tuple(point.explicit_bounds) == spec.buckets


def test_order_latency_of_120ms_lands_in_a_seconds_bucket(sdk: Sdk) -> None:
    sdk.meters.order_latency.record(
        0.12, symbol="AAPL", side="buy", order_type="market", outcome="filled"
    )
    [point] = sdk.points("trading.order.latency")
    index = next(i for i, c in enumerate(point.bucket_counts) if c)
    assert point.explicit_bounds[index] == 0.15  # (0.1, 0.15], not the SDK's le="5"


def test_no_declaration_uses_an_identifier_attribute() -> None:
    for spec in CATALOGUE:
        assert not {a.lower() for a in spec.attribute_names} & FORBIDDEN_ATTRIBUTES


# --- attribute guards ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["order_id", "client_order_id", "account_id", "account.id"])
def test_identifiers_never_become_metric_attributes(
    sdk: Sdk, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "otel.meters"):
        sdk.meters.orders.add(1, {name: "ORD-1"}, symbol="AAPL", side="buy", status="filled")
    [point] = sdk.points("trading.orders")
    assert attrs_of(point) == {"symbol": "AAPL", "side": "buy", "status": "filled"}
    assert "never a metric attribute" in caplog.text


def test_invalid_enum_value_folds_with_one_warning(
    sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "otel.meters"):
        for _ in range(3):
            sdk.meters.order_rejections.add(1, reason="cosmic_rays")
    [point] = sdk.points("trading.order.rejections")
    assert attrs_of(point) == {"reason": "_other"}
    assert point.value == 3
    assert len([r for r in caplog.records if "cosmic_rays" in r.getMessage()]) == 1


def test_missing_attribute_is_filled_not_split(sdk: Sdk) -> None:
    sdk.meters.cache_requests.add(1, cache="price")
    [point] = sdk.points("trading.cache.requests")
    assert attrs_of(point) == {"cache": "price", "result": "_other"}


def test_non_string_values_are_validated_as_text(sdk: Sdk) -> None:
    sdk.meters.orders.add(1, symbol="aapl", side=True, status=None)
    [point] = sdk.points("trading.orders")
    assert attrs_of(point) == {"symbol": "AAPL", "side": "_other", "status": "_other"}


def test_symbol_allow_list_folds_others() -> None:
    s = make_sdk(SymbolGuard(["AAPL", "msft"]))
    for sym in ("AAPL", "MSFT", "TSLA", "'; drop table"):
        s.meters.position_quantity.set(1, symbol=sym)
    symbols = {p.attributes["symbol"] for p in s.points("trading.position.quantity")}
    assert symbols == {"AAPL", "MSFT", OTHER_SYMBOL}


def test_symbol_cap_bounds_series_whatever_the_sdk_does() -> None:
    s = make_sdk(SymbolGuard(None, cap=5))
    for i in range(500):
        s.meters.orders.add(1, symbol=f"S{i}", side="buy", status="filled")
    points = s.points("trading.orders")
    symbols = {p.attributes["symbol"] for p in points}
    assert symbols == {"S0", "S1", "S2", "S3", "S4", OTHER_SYMBOL}
    assert sum(p.value for p in points) == 500


def test_symbol_guard_from_env() -> None:
    guard = SymbolGuard.from_env(
        {"TRADING_OTEL_SYMBOLS": "aapl, msft ,", "TRADING_OTEL_SYMBOL_CAP": "x"}
    )
    assert (guard("AAPL"), guard("msft"), guard("GOOG")) == ("AAPL", "MSFT", OTHER_SYMBOL)
    assert SymbolGuard.from_env({}).cap == meters_mod.DEFAULT_SYMBOL_CAP


def test_bad_value_never_raises(sdk: Sdk, caplog: pytest.LogCaptureFixture) -> None:
    class Weird:
        def __str__(self) -> str:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, "otel.meters"):
        sdk.meters.order_rejections.add(1, reason=Weird())
    assert "recording trading_order_rejections_total failed" in caplog.text


# --- order_timer --------------------------------------------------------------------------


def test_order_timer_records_filled_and_rejected(sdk: Sdk) -> None:
    with order_timer("AAPL", "buy", "limit", meters=sdk.meters) as order:
        order.filled()
    with order_timer("AAPL", "sell", "market", meters=sdk.meters) as order:
        order.rejected("position_limit")
    latency = {p.attributes["outcome"]: p for p in sdk.points("trading.order.latency")}
    assert set(latency) == {"filled", "rejected"}
    assert attrs_of(latency["filled"]) == {
        "symbol": "AAPL", "side": "buy", "order_type": "limit", "outcome": "filled"
    }  # fmt: skip
    statuses = {p.attributes["status"]: p.value for p in sdk.points("trading.orders")}
    assert statuses == {"filled": 1, "rejected": 1}
    [rej] = sdk.points("trading.order.rejections")
    assert attrs_of(rej) == {"reason": "position_limit"} and rej.value == 1


def test_order_timer_counts_errors_and_reraises(sdk: Sdk) -> None:
    with (
        pytest.raises(ConnectionError),
        order_timer("AAPL", "buy", "market", meters=sdk.meters) as order,
    ):
        order.filled()  # set before the failure: the exception still wins
        raise ConnectionError("broker down")
    [lat] = sdk.points("trading.order.latency")
    assert lat.attributes["outcome"] == "error" and lat.count == 1
    [cnt] = sdk.points("trading.orders")
    assert cnt.attributes["status"] == "error"


def test_order_timer_without_outcome_counts_error_with_warning(
    sdk: Sdk, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, "otel.meters"),
        order_timer("AAPL", "buy", "market", meters=sdk.meters),
    ):
        pass
    [lat] = sdk.points("trading.order.latency")
    assert lat.attributes["outcome"] == "error"
    assert "without an outcome" in caplog.text


def test_order_timer_exemplar_carries_span(sdk: Sdk) -> None:
    tracer = sdk.tracer_provider.get_tracer("t")
    with (
        tracer.start_as_current_span("order") as span,
        order_timer("AAPL", "buy", "market", meters=sdk.meters) as order,
    ):
        order.filled()
    [lat] = sdk.points("trading.order.latency")
    [ex] = lat.exemplars
    ctx = span.get_span_context()
    assert (ex.trace_id, ex.span_id) == (ctx.trace_id, ctx.span_id)


# --- fast path == SDK path ----------------------------------------------------------------


def _snapshot(s: Sdk) -> list[tuple[Any, ...]]:
    out = []
    for spec in CATALOGUE:
        for p in s.points(spec.name):
            base = (spec.name, tuple(sorted(p.attributes.items())))
            if isinstance(p, HistogramDataPoint):
                out.append((*base, p.count, p.sum, tuple(p.bucket_counts), p.min, p.max))
            else:
                assert isinstance(p, NumberDataPoint)
                out.append((*base, p.value))
    return sorted(out)


def _workload(m: TradingMeters, record: bool) -> None:
    for i in range(50):
        attrs = {"symbol": "AAPL", "side": "buy", "order_type": "market", "outcome": "filled"}
        if record:
            m.order_latency.record(0.001 * i, attrs)
            m.orders.add(1, symbol="MSFT", side="sell", status="filled")
            m.pnl.set(float(i), kind="daily")
            m.websocket_connections.add(-1 if i % 3 else 2)
        else:
            m.order_latency.instrument.record(0.001 * i, attrs)  # type: ignore[attr-defined]
            m.orders.instrument.add(1, {"symbol": "MSFT", "side": "sell", "status": "filled"})  # type: ignore[attr-defined]
            m.pnl.instrument.set(float(i), {"kind": "daily"})  # type: ignore[attr-defined]
            m.websocket_connections.instrument.add(-1 if i % 3 else 2, {})  # type: ignore[attr-defined]


def test_fast_path_produces_the_same_points_as_the_sdk() -> None:
    fast, slow = make_sdk(), make_sdk()
    _workload(fast.meters, record=True)
    _workload(slow.meters, record=False)
    bound = fast.meters.order_latency.bind(
        symbol="AAPL", side="buy", order_type="market", outcome="filled"
    )
    assert bound._aggs, "fast path not engaged on this SDK version"
    assert _snapshot(fast) == _snapshot(slow)


def test_fast_path_drops_invalid_values_like_the_sdk(sdk: Sdk) -> None:
    rec = sdk.meters.fills.bind()
    rec(1)
    rec(-5)  # counters cannot go down: the SDK warns and drops it
    rec(float("nan"))
    rec(2)
    [p] = sdk.points("trading.fills")
    assert p.value == 3


def test_fast_path_follows_a_reader_added_later(sdk: Sdk) -> None:
    rec = sdk.meters.fills.bind()
    rec(1)
    late = InMemoryMetricReader()
    sdk.provider.add_metric_reader(late)
    rec(1)
    data = late.get_metrics_data()
    assert data is not None
    [m] = [m for sm in data.resource_metrics[0].scope_metrics for m in sm.metrics]
    assert m.data.data_points[0].value == 1
    assert sdk.points("trading.fills")[0].value == 2


# --- process-wide instance ----------------------------------------------------------------


def test_get_meters_rebinds_when_the_global_provider_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = make_sdk(), make_sdk()
    current = [first.provider]
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: current[0])
    monkeypatch.setattr(meters_mod, "_instance", None)
    a = get_meters()
    assert get_meters() is a
    a.fills.add(1)
    current[0] = second.provider
    b = get_meters()
    assert b is not a and b.provider is second.provider
    b.fills.add(2)
    assert first.points("trading.fills")[0].value == 1
    assert second.points("trading.fills")[0].value == 2
    assert b.symbols is a.symbols  # the configured symbol policy survives a rebind


def test_catalogue_keys_resolve_by_key() -> None:
    assert BY_KEY["order_latency"].prom_name == "trading_order_latency_seconds"


# --- CachedRecorder and the lean reservoir, outside the catalogue -------------------------


def _points_by_attrs(reader: InMemoryMetricReader) -> dict[tuple[Any, ...], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(sorted((k, str(v)) for k, v in p.attributes.items())): p
        for sm in data.resource_metrics[0].scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
    }


def test_cached_recorder_matches_public_record() -> None:
    from otel._internal.recording import CachedRecorder

    readers = InMemoryMetricReader(), InMemoryMetricReader()
    fast_p, slow_p = (MeterProvider(metric_readers=[r]) for r in readers)
    fast_h = fast_p.get_meter("t").create_histogram("http.server.request.duration", unit="s")
    slow_h = slow_p.get_meter("t").create_histogram("http.server.request.duration", unit="s")
    rec = CachedRecorder(fast_h, max_sets=2)
    for i in range(30):
        attrs = {"http.route": f"/r{i % 4}", "http.response.status_code": 200, "ok": True}
        rec.record(0.01 * i, attrs)
        slow_h.record(0.01 * i, attrs)
    rec(0.5, {"tags": ["a", "b"]})  # unhashable: public path
    slow_h.record(0.5, {"tags": ["a", "b"]})
    assert len(rec._cache) == 2  # bounded; the other routes used the public path
    fast, slow = _points_by_attrs(readers[0]), _points_by_attrs(readers[1])
    assert fast.keys() == slow.keys()
    for key, point in fast.items():
        assert (point.count, point.sum, list(point.bucket_counts)) == (
            slow[key].count,
            slow[key].sum,
            list(slow[key].bucket_counts),
        )


def test_lean_reservoir_keeps_attributes_a_view_dropped() -> None:
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    from otel._internal.recording import lean_reservoir_factory

    reader = InMemoryMetricReader()
    view = View(
        instrument_name="h",
        attribute_keys={"route"},
        aggregation=ExplicitBucketHistogramAggregation((1.0, 2.0)),
        exemplar_reservoir_factory=lean_reservoir_factory,
    )
    provider = MeterProvider(metric_readers=[reader], views=[view])
    hist = provider.get_meter("t").create_histogram("h")
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        hist.record(1.5, {"route": "/x", "user": "u1"})
    [point] = _points_by_attrs(reader).values()
    assert dict(point.attributes) == {"route": "/x"}
    [ex] = point.exemplars
    assert ex.value == 1.5 and ex.filtered_attributes == {"user": "u1"} and ex.trace_id


def test_sdk_cardinality_cap_bounds_instruments_outside_the_catalogue() -> None:
    """Why the SDK floor is 1.45.2: its default cap folds series beyond 2000 into one
    ``otel.metric.overflow`` series, which bounds instruments our symbol guard does not
    see (an instrumentation's, or a user's own). pyproject.toml's lower bound rests on it."""
    from tests.fixtures.lib import memory_telemetry

    mt = memory_telemetry()
    try:
        meter = mt.telemetry.meter_provider.get_meter("cardinality-test")
        counter = meter.create_counter("cardinality.test")
        for i in range(2500):
            counter.add(1, {"user.supplied": f"value-{i}"})
        points = mt.points("cardinality.test")
    finally:
        mt.telemetry.shutdown(5)
    overflow = [p for p in points if p.attributes.get("otel.metric.overflow")]
    assert len(points) <= 2001 and len(overflow) == 1
    assert sum(p.value for p in points) == 2500  # folded, never lost
