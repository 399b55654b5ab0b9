"""Resource, sampler, views, exemplar filter and readers built from the environment."""

from __future__ import annotations

import os
import urllib.request

import pytest
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from otel._internal import bootstrap
from otel._internal.catalogue import CATALOGUE
from otel._internal.pull_endpoint import PrometheusEndpoint
from otel._internal.resource import build_resource, instance_id
from otel._internal.settings import Settings
from tests.fixtures.lib import OFFLINE, memory_telemetry


def test_resource_names_the_service_and_process() -> None:
    s = Settings.from_env(
        {"TRADING_OTEL_ENVIRONMENT": "ci", "OTEL_RESOURCE_ATTRIBUTES": "team=exec"}
    )
    attrs = build_resource(s, service_name="gw", service_version="1.4.0").attributes
    assert attrs["service.name"] == "gw"
    assert attrs["service.version"] == "1.4.0"
    assert attrs["service.namespace"] == "trading"
    assert attrs["deployment.environment.name"] == "ci"
    assert attrs["service.instance.id"] == instance_id()
    assert attrs["team"] == "exec"
    assert attrs["process.pid"] == os.getpid()
    assert attrs["host.name"]


def test_environment_overrides_the_code_defaults() -> None:
    s = Settings.from_env(
        {
            "OTEL_RESOURCE_ATTRIBUTES": (
                "service.name=from-attrs,service.version=9,service.namespace=x"
            ),
            "OTEL_SERVICE_NAME": "from-env",
        }
    )
    attrs = build_resource(s, service_name="from-code", service_version="1").attributes
    assert (attrs["service.name"], attrs["service.version"], attrs["service.namespace"]) == (
        "from-env",
        "9",
        "x",
    )


def test_instance_id_changes_in_a_forked_child() -> None:
    parent = instance_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its id and leave without running pytest's teardown
        os.write(write, instance_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child and child != parent
    assert instance_id() == parent


def test_a_forked_worker_reports_its_own_identity_on_inherited_providers() -> None:
    # gunicorn --preload: configured in the parent, used in the forked worker.
    mt = memory_telemetry()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s"):
            pass
        (span,) = mt.spans.get_finished_spans()
        attrs = span.resource.attributes
        os.write(write, f"{attrs['service.instance.id']} {attrs['process.pid']}".encode())
        os._exit(0)
    os.close(write)
    child_id, child_pid = os.read(read, 200).decode().split()
    os.waitpid(pid, 0)
    os.close(read)
    parent = mt.telemetry.resource.attributes
    assert child_id != parent["service.instance.id"]
    assert int(child_pid) == pid
    mt.telemetry.shutdown(5)


@pytest.mark.parametrize(
    ("env", "recording"),
    [
        ({}, True),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, False),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, True),
    ],
)
def test_sampler_follows_the_environment(env: dict[str, str], recording: bool) -> None:
    mt = memory_telemetry(env)
    with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        assert span.is_recording() is recording
    mt.telemetry.shutdown(5)


def test_latency_histograms_use_second_buckets_and_trace_based_exemplars() -> None:
    mt = memory_telemetry()
    spec = next(s for s in CATALOGUE if s.prom_name == "trading_order_latency_seconds")
    meter = mt.telemetry.meter_provider.get_meter("t")
    order = meter.create_histogram(spec.name, unit="s")
    db = meter.create_histogram("db.client.operation.duration", unit="s")
    order.record(0.12)  # outside a span: no exemplar (trace_based filter)
    with mt.telemetry.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        order.record(0.12)
        db.record(0.003)
    (point,) = mt.points(spec.name)
    assert tuple(point.explicit_bounds) == spec.buckets
    assert point.bucket_counts[list(spec.buckets).index(0.15)] == 2
    assert [e.span_id for e in point.exemplars] == [span.get_span_context().span_id]
    (db_point,) = mt.points("db.client.operation.duration")
    assert max(db_point.explicit_bounds) <= 10
    mt.telemetry.shutdown(5)


def test_metrics_exporter_list_builds_each_reader() -> None:
    env = {
        **OFFLINE,
        "OTEL_METRICS_EXPORTER": "prometheus,console",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": "0",
    }
    telemetry = bootstrap.build(Settings.from_env(env), service_name="svc")
    readers = telemetry.metric_readers
    try:
        kinds = sorted(type(r).__name__ for r in readers)
        assert kinds == ["PeriodicExportingMetricReader", "PrometheusEndpoint"]
        prom = next(r for r in readers if isinstance(r, PrometheusEndpoint))
        telemetry.meter_provider.get_meter("t").create_counter("probe").add(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{prom.port}/metrics", timeout=5) as resp:
            assert b"probe_total" in resp.read()
        assert any(isinstance(r, PeriodicExportingMetricReader) for r in readers)
    finally:
        assert telemetry.shutdown(5)


@pytest.mark.parametrize("disabled", [frozenset({"asyncpg"}), frozenset({"*"}), frozenset()])
def test_disabled_instrumentations_are_honoured(disabled: frozenset[str]) -> None:
    import asyncpg.connection

    from otel._internal.instrumentation import instrument_libraries

    mt = memory_telemetry()
    before = asyncpg.connection.Connection.__dict__["fetch"]
    undo = instrument_libraries(
        mt.telemetry.tracer_provider,
        mt.telemetry.meter_provider,
        disabled | {"redis", "httpx"},  # keep this test away from process-wide instrumentors
    )
    try:
        wrapped = asyncpg.connection.Connection.__dict__["fetch"] is not before
        assert wrapped is (not disabled)
    finally:
        undo()
        mt.telemetry.shutdown(5)
    assert asyncpg.connection.Connection.__dict__["fetch"] is before
