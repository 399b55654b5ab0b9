"""Alert latency: every deployment mode notifies within a minute, computed from the shipped
configs (services' env, collectors, Prometheus, Alertmanager), and docs/alerting.md prints
exactly what the computation gives."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.alerting import REPO
from trading_otel_tools.alerts import deployments, latency, stages
from trading_otel_tools.alerts.deployments import Deployment, DeploymentError
from trading_otel_tools.alerts.latency import (
    BEGIN,
    BUDGET_S,
    END,
    ModeLatency,
    compute,
    mode_latency,
    render_markdown,
    replace_block,
)
from trading_otel_tools.alerts.routing import matches, reached
from trading_otel_tools.alerts.stages import parse_duration

DOC = REPO / "docs" / "alerting.md"
MODES = list(deployments.MODES)


@pytest.fixture(scope="module")
def results() -> dict[str, ModeLatency]:
    return {r.mode: r for r in compute()}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15), ("1m", 60), ("500ms", 0.5), ("1m30s", 90), ("1h", 3600), ("2d", 172800),
     ("1.5s", 1.5), ("250us", 0.00025), ("0", 0), (0, 0), (" 10s ", 10)],
)  # fmt: skip
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["15", "s", "", "-1s", "1x", "10 s", True, None, 15])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_notifies_within_a_minute(results: dict[str, ModeLatency], mode: str) -> None:
    r = results[mode]
    assert r.worst_s < BUDGET_S, latency.render_text([r])
    # Every severity the rules use has a route, and every route is counted.
    assert {rt.severity for rt in r.routes} == {"critical", "high", "warning"}
    assert all(r.total(rt) <= r.worst_s for rt in r.routes)


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_sets_every_interval_itself(results: dict[str, ModeLatency], mode: str) -> None:
    # No stage may fall back to an upstream default (the SDK's 60 s export was the bug).
    r = results[mode]
    waits = [*r.pipeline, *(rt.group_wait for rt in r.routes)]
    assert not [s for s in waits if "default" in s.where or "unset" in s.where], waits
    whats = [s.what for s in r.pipeline]
    assert whats[0] == "SDK metric export interval"
    assert whats[-2:] == [f"Prometheus scrape, job `{stages.EXPORTER_JOB}`", "rule evaluation"]


def test_the_stages_follow_each_modes_own_path(results: dict[str, ModeLatency]) -> None:
    batches = {
        mode: [s.what for s in r.pipeline if s.what.startswith("collector `batch`")]
        for mode, r in results.items()
    }
    assert batches == {
        "local": ["collector `batch`, collector"],
        "compose": ["collector `batch`, otel-collector"],
        # Services -> the node's agent -> the gateway Service -> the gateway's exporter.
        "k8s": ["collector `batch`, otel-agent (DaemonSet)",
                "collector `batch`, otel-gateway (Deployment)"],
    }  # fmt: skip
    where = {mode: r.pipeline[-1].where.split(":")[0] for mode, r in results.items()}
    assert where == {
        "local": "deploy/prometheus/prometheus.local.yml",
        "compose": "deploy/prometheus/prometheus.compose.yml",
        "k8s": "deploy/k8s/prometheus/prometheus.yml",
    }
    am = {mode: r.routes[0].group_wait.where.split(":")[0] for mode, r in results.items()}
    assert am == {
        "local": "deploy/alertmanager/alertmanager.local.yml",
        "compose": "deploy/alertmanager/alertmanager.yml",
        "k8s": "deploy/alertmanager/alertmanager.yml",
    }
    # Production sends every severity to the archive too, each with its own group_wait.
    receivers = {(rt.severity, rt.receiver) for rt in results["compose"].routes}
    assert {("critical", "archive"), ("critical", "paging"), ("high", "chat")} <= receivers


def test_alerts_without_for_read_raw_series(results: dict[str, ModeLatency]) -> None:
    r = results["compose"]
    assert {"CircuitBreakerTripped", "DailyLossLimitExceeded", "PositionLimitBreached"} <= set(
        r.no_for
    )
    # Otherwise the recording group's evaluation would be a stage of the table.
    assert not set(r.no_for) & set(r.recording_readers)


def test_the_doc_prints_the_computed_figures() -> None:
    text = DOC.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    block = text[text.index(BEGIN) : text.index(END) + len(END)]
    assert block == render_markdown(compute()), (
        "docs/alerting.md's alert-latency block is stale: run `make docs` "
        "(python -m trading_otel_tools.alerts.latency --update docs/alerting.md)"
    )


# --- the figures move with the files --------------------------------------------------


def _compose() -> Deployment:
    return deployments.compose()


def test_compose_without_an_export_interval_is_the_100_s_of_issue_10() -> None:
    dep = _compose()
    env = {
        name: {k: v for k, v in e.items() if k != "OTEL_METRIC_EXPORT_INTERVAL"}
        for name, e in dep.services.items()
    }
    r = mode_latency(dataclasses.replace(dep, services=env))
    assert r.pipeline[0].seconds == 60 and "unset (SDK default)" in r.pipeline[0].where
    assert r.worst_s > BUDGET_S


def test_intervals_are_read_not_remembered() -> None:
    dep = _compose()
    base = mode_latency(dep)
    prometheus: dict[str, Any] = {**dep.prometheus, "global": {"scrape_interval": "1m"}}
    slower = mode_latency(dataclasses.replace(
        dep,
        prometheus=prometheus,
        entry=dataclasses.replace(
            dep.entry, env={**dep.entry.env, "TRADING_OTEL_COLLECTOR_BATCH_TIMEOUT": "5s"}
        ),
    ))  # fmt: skip
    waits = {s.what.split(",")[0]: s.seconds for s in slower.pipeline}
    assert waits["Prometheus scrape"] == 60
    assert waits["rule evaluation"] == 60  # evaluation_interval gone: Prometheus' 1m
    assert waits["collector `batch`"] == 5
    assert slower.worst_s == base.worst_s + (60 - 15) + (60 - 15) + (5 - 1)


def test_a_rule_query_offset_is_a_stage() -> None:
    dep = _compose()
    base = mode_latency(dep)
    prometheus = {**dep.prometheus, "global": {**dep.prometheus["global"],
                                               "rule_query_offset": "30s"}}  # fmt: skip
    r = mode_latency(dataclasses.replace(dep, prometheus=prometheus))
    assert r.pipeline[-1].what == "rule query offset" and r.pipeline[-1].seconds == 30
    assert r.worst_s == base.worst_s + 30


def test_a_scrape_job_on_another_port_is_an_error() -> None:
    dep = _compose()
    jobs = [
        {**j, "static_configs": [{"targets": ["otel-collector:9999"]}]}
        if j["job_name"] == stages.EXPORTER_JOB
        else j
        for j in dep.prometheus["scrape_configs"]
    ]
    with pytest.raises(DeploymentError, match="9999"):
        mode_latency(
            dataclasses.replace(dep, prometheus={**dep.prometheus, "scrape_configs": jobs})
        )


# --- Alertmanager routing -------------------------------------------------------------

TREE: dict[str, Any] = yaml.safe_load(
    """
    receiver: ticket
    group_wait: 20s
    routes:
      - receiver: archive
        continue: true
        group_wait: 3s
      - receiver: paging
        matchers: ['severity="critical"']
        group_wait: 1s
        group_interval: 1m
      - receiver: chat
        matchers: ['severity=~"high|medium"']
      - receiver: never
        matchers: ['severity!="warning"']
    """
)


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("critical", [("archive", "3s", "5m"), ("paging", "1s", "1m")]),
        ("high", [("archive", "3s", "5m"), ("chat", "20s", "5m")]),  # inherits the root's
        # A matching `continue` route is a match: the root does not take the alert as well.
        ("warning", [("archive", "3s", "5m")]),
    ],
)
def test_routes_inherit_and_continue(severity: str, expected: list[tuple[str, ...]]) -> None:
    found = reached(TREE, {"severity": severity})
    assert [(r.receiver, r.group_wait, r.group_interval) for r in found] == expected
    # With no matching child, the root takes it.
    (root,) = reached({**TREE, "routes": TREE["routes"][1:]}, {"severity": "warning"})
    assert (root.receiver, root.group_wait, root.group_wait_from) == ("ticket", "20s", "root route")


@pytest.mark.parametrize("mode", MODES)
def test_routes_agree_with_amtool(amtool: str, mode: str, tmp_path: Path) -> None:
    # The walk above decides which group_wait counts: check it against Alertmanager's own.
    dep = deployments.MODES[mode]()
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(dict(dep.alertmanager)))
    for severity in ("critical", "high", "warning"):
        labels = [f"severity={severity}", "alertname=X", "service=execution-gateway"]
        res = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={path}", *labels],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert res.returncode == 0, res.stdout + res.stderr
        ours = [r.receiver for r in reached(dep.alertmanager["route"], {"severity": severity})]
        assert res.stdout.strip() == ",".join(ours), severity


def test_route_defaults_and_where_a_value_comes_from() -> None:
    (only,) = reached({"receiver": "x"}, {})
    assert (only.group_wait, only.group_interval) == ("30s", "5m")
    assert only.group_wait_from == "Alertmanager default"
    froms = [r.group_wait_from for r in reached(TREE, {"severity": "high"})]
    assert froms == ["archive route", "root route"]


def test_matchers() -> None:
    assert matches({"matchers": ['a="1"', "b!=2", 'c=~"x.*"']}, {"a": "1", "c": "xy"})
    assert not matches({"matchers": ['a!~"1|2"']}, {"a": "2"})
    assert matches({"match": {"a": "1"}, "match_re": {"b": ".*"}}, {"a": "1"})
    with pytest.raises(ValueError, match="matcher"):
        matches({"matchers": ["not a matcher"]}, {})


# --- the k8s files this computation reads ---------------------------------------------


def test_k8s_prometheus_config_passes_promtool(promtool: str, tmp_path: Path) -> None:
    doc = yaml.safe_load(deployments.K8S_PROMETHEUS.read_text())
    assert [Path(p).parent for p in doc["rule_files"]] == [Path("/etc/prometheus/rules")] * 2
    doc["rule_files"] = [str(deployments.RULES_DIR / Path(p).name) for p in doc["rule_files"]]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    res = subprocess.run([promtool, "check", "config", str(path)], capture_output=True,
                         text=True, timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == stages.EXPORTER_JOB]
    assert job["honor_labels"] is True
    # The headless Service resolves to every gateway pod.
    (sd,) = job["dns_sd_configs"]
    assert sd["names"][0].startswith("otel-gateway-headless.observability.svc")


def test_k8s_services_env_is_a_configmap() -> None:
    doc = yaml.safe_load(deployments.K8S_SERVICES_ENV.read_text())
    assert doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "trading-otel-telemetry"
    assert all(isinstance(v, str) for v in doc["data"].values())
    assert "OTEL_METRIC_EXPORT_INTERVAL" in doc["data"]


# --- the docs generator -----------------------------------------------------------------


def test_update_replaces_only_the_block(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{BEGIN}\nold\n{END}\nafter\n")
    assert latency.main(["--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old" not in text
    assert render_markdown(compute()) in text
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers here", "x")
