"""transform/utf8 (collector/config/common.yaml) runs in every OTLP pipeline of every role.

What it does to real payloads is proven against the binary in
tests/integration/test_collector_bad_input.py; this pins where it runs and what it says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trading_otel_tools.collector.config import MergedConfig, load
from trading_otel_tools.servers.collector import ROLES, role_files

PROCESSOR = "transform/utf8"
# Go's regexp reads each invalid byte as U+FFFD, so this matches them; OTTL unquotes the
# string, so the YAML holds `\\x{FFFD}` for the regex and `\uFFFD` for the replacement.
PATTERN_AND_REPLACEMENT = '"\\\\x{FFFD}", "\\uFFFD")'


K8S = Path(__file__).parents[2] / "deploy" / "k8s" / "config"
#: The Kubernetes overlays, layered as the manifests pass them (base, role, overlay).
K8S_ROLES = {
    "agent-k8s": ("agent", "agent-k8s.yaml"),
    "gateway-k8s": ("gateway", "gateway-k8s.yaml"),
}


def shipped(role: str) -> MergedConfig:
    if role in K8S_ROLES:
        base, overlay = K8S_ROLES[role]
        return load([*role_files(base), K8S / overlay], {})
    return load(role_files(role), {})


def statements() -> list[str]:
    cfg = shipped("local").get("processors", PROCESSOR)
    return [
        statement
        for key in ("trace_statements", "log_statements", "metric_statements")
        for group in cfg[key]
        for statement in group["statements"]
    ]


def test_every_statement_replaces_invalid_bytes_with_fffd() -> None:
    found = statements()
    assert found
    for statement in found:
        head = statement.split(" where ")[0]
        assert head.endswith(PATTERN_AND_REPLACEMENT), statement


def test_names_bodies_and_attribute_keys_and_values_are_covered() -> None:
    found = statements()
    for target in ("resource.attributes", "scope.attributes", "span.attributes",
                   "spanevent.attributes", "log.attributes", "datapoint.attributes"):  # fmt: skip
        for mode in ("value", "key"):
            assert f'replace_all_patterns({target}, "{mode}", ' in "\n".join(found), (target, mode)
    for field in ("span.name", "span.status.message", "spanevent.name", "scope.name",
                  "log.body", "log.severity_text", "log.event_name"):  # fmt: skip
        assert any(re.match(rf"replace_pattern\({re.escape(field)}, ", s) for s in found), field
    # A map body is repaired at its top level.
    assert any(s.startswith("replace_all_patterns(log.body, ") for s in found)


@pytest.mark.parametrize("role", [*ROLES, *K8S_ROLES])
def test_every_otlp_pipeline_repairs_utf8_right_after_masking(role: str) -> None:
    pipelines = shipped(role).get("service", "pipelines")
    for name, body in pipelines.items():
        if "otlp" not in body["receivers"]:
            continue  # host metrics or a connector's output: repaired upstream
        procs = body["processors"]
        assert PROCESSOR in procs, (role, name)
        # Before sampling, span metrics, label selection and every exporter see the data.
        assert procs.index(PROCESSOR) == procs.index("redaction") + 1, (role, name, procs)
