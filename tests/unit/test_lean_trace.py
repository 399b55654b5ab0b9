"""The lean span (``TRADING_OTEL_LEAN_SPANS``) exports what the SDK's span exports.

The same workload runs through ``bootstrap.build()`` with lean spans on and off, each
exporting over OTLP/HTTP to a real receiver; the requests that arrive are compared span
by span and attribute by attribute, with ids replaced by their order of appearance and
clock readings blanked. The workload uses what instrumentations and users use: nesting,
every attribute type (and bad ones), limits, events, exceptions, status rules, links,
remote parents, decorators on sync and async functions, ``start_span`` + ``use_span``,
and the samplers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otel._internal import bootstrap
from otel._internal.lean_trace import LeanSpan, LeanTracerProvider
from otel._internal.settings import Settings
from tests.fixtures.lib import OFFLINE, OtlpReceiver, memory_telemetry

#: A remote parent, as a propagator extracts it from a request.
REMOTE = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
UNSAMPLED = {"traceparent": "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203332-00"}


class Boom(Exception):
    pass


def workload(provider: trace.TracerProvider) -> None:
    tracer = provider.get_tracer("tests.lean", "1.2.3", schema_url="https://x/1.0")
    other = provider.get_tracer("tests.other", attributes={"scope.k": "v"})
    with tracer.start_as_current_span(
        "POST /api/v1/orders",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "server.port": 8001, "ok": True, "f": 1.5},
    ) as root:
        root.set_attribute("list", ["a", "b"])
        root.set_attribute("ints", (1, 2, 3))
        root.set_attribute("none", None)
        root.set_attribute("", "dropped: empty key")
        root.set_attribute("obj", object())  # not an attribute value: the SDK's rule
        root.set_attributes({"many.a": 1, "many.b": [True, False]})
        root.set_attribute("http.request.method", "PUT")  # overwrite moves it last
        root.set_attribute("long", "x" * 100)
        root.set_attributes({"seq.long": ["y" * 50], "over.a": 1, "over.b": 2})
        root.add_event("checkpoint", {"n": 1, "s": "x", "b": "y" * 40, "d": 4}, timestamp=1_000)
        root.add_event("second", timestamp=1_100)
        root.add_event("third", {"k": "v"}, timestamp=1_200)
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(StatusCode.ERROR, "first")
            child.set_status(Status(StatusCode.UNSET))  # ignored
            child.set_status(Status(StatusCode.OK))
            child.set_status(StatusCode.ERROR, "after OK: ignored")
            child.update_name("child renamed")
        with pytest.raises(Boom), tracer.start_as_current_span("raises"):
            raise Boom("no such order 42")
        with (
            pytest.raises(Boom),
            tracer.start_as_current_span(
                "raises quietly", record_exception=False, set_status_on_exception=False
            ),
        ):
            raise Boom("quiet")
        with pytest.raises(KeyboardInterrupt), tracer.start_as_current_span("interrupted"):
            raise KeyboardInterrupt  # a BaseException: neither recorded nor an error status
        span = tracer.start_span("manual", links=[Link(root.get_span_context(), {"l": 1})])
        with trace.use_span(span, end_on_exit=True):
            trace.get_current_span().set_attribute("current", True)
        kept = tracer.start_span("kept open")
        with trace.use_span(kept, end_on_exit=False):
            pass
        kept.add_link(SpanContext(0, 0, False), {"why": "invalid but says something"})
        kept.add_link(SpanContext(0, 0, False))  # invalid and says nothing: dropped
        kept.record_exception(ValueError("bad"), {"extra": 1}, timestamp=2_000, escaped=True)
        kept.end(end_time=9_000_000)
        kept.set_attribute("after", "end")  # ignored, as the SDK does
        kept.end()  # a warning, nothing else
        with pytest.raises(Boom), tracer.start_span("as context") as ctx_span:
            ctx_span.set_attribute("k", "v")
            raise Boom("inside start_span")
        with other.start_as_current_span("other scope", start_time=5_000, end_on_exit=False) as s:
            pass
        s.end(end_time=6_000)

    @tracer.start_as_current_span("decorated")
    def decorated(x: int) -> int:
        trace.get_current_span().set_attribute("x", x)
        return x * 2

    @tracer.start_as_current_span("decorated async")
    async def decorated_async(x: int) -> int:
        await asyncio.sleep(0)
        trace.get_current_span().set_attribute("x", x)
        return x + 1

    assert decorated(2) == 4 and decorated(3) == 6
    assert asyncio.run(decorated_async(5)) == 6
    for carrier in (REMOTE, UNSAMPLED):
        parent = propagate.extract(carrier)
        with (
            tracer.start_as_current_span("from remote", context=parent, kind=SpanKind.SERVER),
            tracer.start_as_current_span("under remote"),
        ):
            pass
    token = context.attach(propagate.extract(REMOTE))
    try:
        with tracer.start_as_current_span("attached remote"):
            pass
    finally:
        context.detach(token)


def _normalise(spans: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Any]:
    ids: dict[str, str] = {}

    def same(value: str) -> str:
        return ids.setdefault(value, f"id{len(ids)}")

    def clock(value: str) -> str:
        return value if int(value) < 10**12 else "now"

    out = []
    for _, span in spans:
        span = dict(span)
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = same(span[key])
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            span[key] = clock(span[key])
        for event in span.get("events", []):
            event["timeUnixNano"] = clock(event["timeUnixNano"])
            for kv in event.get("attributes", []):
                if kv["key"] == "exception.stacktrace":
                    # The SDK's generator adds its own frames; the last line is the error.
                    kv["value"] = {"stringValue": kv["value"]["stringValue"].splitlines()[-1]}
        for link in span.get("links", []):
            for key in ("traceId", "spanId"):
                if key in link:
                    link[key] = same(link[key])
        out.append(span)
    return out


def _export(env: dict[str, str]) -> list[Any]:
    receiver = OtlpReceiver().start()
    try:
        settings = Settings.from_env(
            OFFLINE
            | {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            }
            | env
        )
        telemetry = bootstrap.build(settings, service_name="lean-test")
        try:
            workload(telemetry.tracer_provider)
        finally:
            assert telemetry.shutdown(10)
        return _normalise(receiver.spans())
    finally:
        receiver.stop()


#: Span limits, which the SDK reads from the process environment.
LIMITS = {
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "12",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "24",
    "OTEL_SPAN_EVENT_COUNT_LIMIT": "2",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT": "3",
}


@pytest.mark.parametrize(
    ("spans", "encoder"),
    [("true", "true"), ("true", "false"), ("false", "true")],
    ids=["lean-spans-lean-encoder", "lean-spans-sdk-encoder", "sdk-spans-lean-encoder"],
)
def test_lean_paths_export_what_the_sdk_exports(
    spans: str, encoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each lean path against the SDK's own spans and encoder."""
    for key, value in LIMITS.items():
        monkeypatch.setenv(key, value)
    lean = _export({"TRADING_OTEL_LEAN_SPANS": spans, "TRADING_OTEL_LEAN_ENCODER": encoder})
    stock = _export({"TRADING_OTEL_LEAN_SPANS": "false", "TRADING_OTEL_LEAN_ENCODER": "false"})
    assert [s["name"] for s in lean] == [s["name"] for s in stock]
    for ours, theirs in zip(lean, stock, strict=True):
        assert ours == theirs, ours["name"]
    names = {s["name"] for s in lean}
    # The workload really exercised what it claims (the unsampled remote parent is dropped).
    assert {"child renamed", "decorated", "decorated async", "from remote"} <= names
    assert sum(s["name"] == "from remote" for s in lean) == 1
    root = next(s for s in lean if s["name"] == "POST /api/v1/orders")
    assert root["droppedAttributesCount"] == 3  # an empty key, then two over the limit of 12
    assert len(root["attributes"]) == 12
    assert root["droppedEventsCount"] == 1  # three events, the limit is two
    long = next(a for a in root["attributes"] if a["key"] == "long")
    assert long["value"]["stringValue"] == "x" * 24
    assert any(s.get("links") for s in lean)


def test_the_switch_picks_the_provider() -> None:
    lean = memory_telemetry()
    stock = memory_telemetry({"TRADING_OTEL_LEAN_SPANS": "false"})
    try:
        assert isinstance(lean.telemetry.tracer_provider, LeanTracerProvider)
        assert type(stock.telemetry.tracer_provider) is TracerProvider
        for mt in (lean, stock):
            with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s"):
                pass
        (ours,), (theirs,) = lean.spans.get_finished_spans(), stock.spans.get_finished_spans()
        assert isinstance(ours, LeanSpan) and not isinstance(theirs, LeanSpan)
        # Code that wants the SDK's JSON view (the console exporter) gets the same fields.
        ours_json, theirs_json = json.loads(ours.to_json()), json.loads(theirs.to_json())
        assert ours_json["context"]["trace_id"] == f"0x{ours.context.trace_id:032x}"
        assert ours_json.keys() == theirs_json.keys()
        assert ours_json["name"] == theirs_json["name"] == "s"
    finally:
        lean.telemetry.shutdown(5)
        stock.telemetry.shutdown(5)


def test_an_unknown_sdk_shape_falls_back_to_the_sdk_spans(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from otel._internal import lean_trace

    def broken(*_: Any) -> Any:
        raise RuntimeError("probe failed")

    monkeypatch.setattr(lean_trace, "lean_provider", broken)
    with caplog.at_level(logging.WARNING, "otel.config"):
        mt = memory_telemetry()
    try:
        assert type(mt.telemetry.tracer_provider) is TracerProvider
        assert "lean spans are not available" in caplog.text
    finally:
        mt.telemetry.shutdown(5)


@pytest.mark.parametrize(
    ("sampler", "arg", "expected"),
    [
        ("always_on", "", {"root": True, "unsampled parent": True}),
        ("always_off", "", {"root": False, "unsampled parent": False}),
        ("parentbased_always_on", "", {"root": True, "unsampled parent": False}),
        ("parentbased_always_off", "", {"root": False, "unsampled parent": False}),
        ("traceidratio", "1", {"root": True, "unsampled parent": True}),
        ("parentbased_traceidratio", "0", {"root": False, "unsampled parent": False}),
    ],
)
def test_samplers_decide_as_on_the_sdk(sampler: str, arg: str, expected: dict[str, bool]) -> None:
    for lean in ("true", "false"):
        mt = memory_telemetry(
            {"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg or "1",
             "TRADING_OTEL_LEAN_SPANS": lean}
        )  # fmt: skip
        tracer = mt.telemetry.tracer_provider.get_tracer("t")
        try:
            with tracer.start_as_current_span("root") as root:
                assert root.get_span_context().trace_flags.sampled is expected["root"]
            parent = propagate.extract(UNSAMPLED)
            with tracer.start_as_current_span("unsampled parent", context=parent) as child:
                flags = child.get_span_context().trace_flags
                assert flags.sampled is expected["unsampled parent"], lean
            exported = {s.name for s in mt.spans.get_finished_spans()}
            assert exported == {k for k, v in expected.items() if v}, lean
        finally:
            mt.telemetry.shutdown(5)


def test_exemplars_read_the_lean_current_span() -> None:
    mt = memory_telemetry()
    try:
        histogram = mt.telemetry.meter_provider.get_meter("t").create_histogram("h")
        with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            histogram.record(1.0)
        (point,) = mt.points("h")
        (exemplar,) = point.exemplars
        assert exemplar.span_id == span.get_span_context().span_id
        assert exemplar.trace_id == span.get_span_context().trace_id
    finally:
        mt.telemetry.shutdown(5)


def test_the_flags_carry_the_random_trace_id_bit_like_the_sdk() -> None:
    spans = {}
    for lean in ("true", "false"):
        mt = memory_telemetry({"TRADING_OTEL_LEAN_SPANS": lean})
        with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
            spans[lean] = span.get_span_context().trace_flags
        mt.telemetry.shutdown(5)
    assert spans["true"] == spans["false"]
    assert spans["true"] & TraceFlags.SAMPLED


def _lean_provider() -> LeanTracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import sampling

    return LeanTracerProvider(sampler=sampling.ALWAYS_ON, resource=Resource.create({}))


def test_processors_are_called_as_the_sdk_calls_them() -> None:
    from unittest import mock

    from opentelemetry.sdk.trace import SpanProcessor

    calls: list[str] = []
    mocked = mock.Mock(spec=SpanProcessor)
    on_instance = SpanProcessor()
    on_instance.on_end = lambda span: calls.append(f"end:{span.name}")  # type: ignore[method-assign]
    on_instance._on_ending = lambda span: calls.append(f"ending:{span.name}")  # type: ignore[method-assign]
    provider = _lean_provider()
    provider.add_span_processor(mocked)
    provider.add_span_processor(on_instance)
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    assert mocked.on_start.call_count == 1 and mocked.on_end.call_count == 1
    assert calls == ["ending:s", "end:s"]  # the SDK's order: every _on_ending, then on_end


def test_a_span_ended_from_two_threads_is_exported_once() -> None:
    import sys
    import threading

    from opentelemetry.sdk.trace import SpanProcessor

    ended: list[int] = []

    class Count(SpanProcessor):
        def on_end(self, span: Any) -> None:
            ended.append(span.context.span_id)

    provider = _lean_provider()
    provider.add_span_processor(Count())
    tracer = provider.get_tracer("t")
    spans = [tracer.start_span("s") for _ in range(3000)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=lambda: [s.end() for s in spans]) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert len(ended) == len(set(ended)) == 3000


def test_span_warnings_stay_out_of_the_exported_logs(caplog: pytest.LogCaptureFixture) -> None:
    span = _lean_provider().get_tracer("t").start_span("s")
    span.end()
    with caplog.at_level(logging.WARNING):
        span.end()
        span.set_attribute("k", "v")
    # The OTLP log handler never ships records of opentelemetry.* loggers (logs.py).
    assert caplog.records and all(r.name.startswith("opentelemetry.") for r in caplog.records)


def test_a_current_span_context_is_entered_once() -> None:
    context = _lean_provider().get_tracer("t").start_as_current_span("s")
    with context:
        pass
    with pytest.raises(RuntimeError, match="entered once"), context:
        pass
