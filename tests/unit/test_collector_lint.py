"""Unit tests of `trading-otel collector lint`'s static checks, on small YAML files.

The binary's `validate` step is covered in tests/integration/test_collector_configs.py.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from otel._internal.sanitize import MASK, SENSITIVE_QUERY_PARAMS
from trading_otel_tools.collector.config import MergedConfig, load
from trading_otel_tools.collector.lint import Finding, LintInputError, lint, overlay_hint
from trading_otel_tools.servers.collector import ROLES, role_files

GOOD = """\
extensions:
  health_check:
    endpoint: 127.0.0.1:13133
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:GRPC:-127.0.0.1:4317}
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
  batch: {}
exporters:
  otlp_grpc:
    endpoint: tempo:4317
    retry_on_failure:
      enabled: true
    sending_queue:
      enabled: true
  prometheus:
    endpoint: 127.0.0.1:8889
    enable_open_metrics: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp_grpc]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [prometheus]
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run(*files: Path, env: dict[str, str] | None = None) -> list[Finding]:
    return lint(list(files), binary=None, environ=env or {})


def rules(findings: list[Finding], severity: str = "error") -> set[str]:
    return {f.rule for f in findings if f.severity == severity}


def only(findings: list[Finding], rule: str) -> Finding:
    hits = [f for f in findings if f.rule == rule]
    assert len(hits) == 1, findings
    return hits[0]


def test_good_config_is_clean(tmp_path: Path) -> None:
    assert run(write(tmp_path, GOOD)) == []


def test_undefined_component_points_at_the_pipeline_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("exporters: [otlp_grpc]", "exporters: [otlp_grpc/tempo]"))
    finding = only(run(path), "undefined-component")
    assert finding.location.file == path
    assert finding.location.line == GOOD.splitlines().index("      exporters: [otlp_grpc]") + 1
    assert "'otlp_grpc/tempo'" in finding.message and "not defined" in finding.message
    # and the now-unused otlp_grpc is reported too
    assert rules(run(path)) == {"undefined-component", "unused-component"}


def test_overlay_linted_alone_gets_a_hint_naming_its_base(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "common.yaml")
    overlay = write(tmp_path, GOOD.replace("exporters: [otlp_grpc]", "exporters: [file]"),
                    "local.yaml")  # fmt: skip
    hint = overlay_hint([overlay], run(overlay))
    assert hint is not None and f"lint {tmp_path / 'common.yaml'} {overlay}" in hint
    # with its base, or with no undefined component, there is nothing to hint
    assert overlay_hint([tmp_path / "common.yaml", overlay], run(overlay)) is None
    good = tmp_path / "common.yaml"
    assert overlay_hint([good], run(good)) is None


def test_defined_but_unused_component(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  batch: {}\n", "  batch: {}\n  transform/unused: {}\n"))
    finding = only(run(path), "unused-component")
    assert finding.severity == "error"
    assert finding.location.line == 14
    assert "'transform/unused'" in finding.message


def test_component_type_not_in_distribution(tmp_path: Path) -> None:
    text = GOOD.replace("  batch: {}\n", "  batch: {}\n  k8sattributes: {}\n").replace(
        "[memory_limiter, batch]\n      exporters: [otlp_grpc]",
        "[memory_limiter, k8sattributes, batch]\n      exporters: [otlp_grpc]",
    )
    finding = only(run(write(tmp_path, text)), "unknown-type")
    assert "'k8sattributes' is not in our distribution" in finding.message
    assert finding.location.line == 14


def test_memory_limiter_not_first(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[memory_limiter, batch]", "[batch, memory_limiter]", 1))
    finding = only(run(path), "memory-limiter-first")
    assert finding.severity == "error" and "position 2" in finding.message
    assert "'traces'" in finding.message


def test_pipeline_without_batching(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[memory_limiter, batch]", "[memory_limiter]", 1))
    finding = only(run(path), "no-batching")
    assert "'traces'" in finding.message and "otlp_grpc" in finding.message


def test_exporter_queue_batch_counts_as_batching(tmp_path: Path) -> None:
    text = GOOD.replace("[memory_limiter, batch]", "[memory_limiter]", 1).replace(
        "    sending_queue:\n      enabled: true\n",
        "    sending_queue:\n      enabled: true\n      batch:\n        flush_timeout: 1s\n",
    )
    assert "no-batching" not in rules(run(write(tmp_path, text)))


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("    retry_on_failure:\n      enabled: true\n", "", "retry_on_failure is missing"),
        ("    sending_queue:\n      enabled: true\n", "", "sending_queue is missing"),
        (
            "    sending_queue:\n      enabled: true\n",
            "    sending_queue:\n      enabled: false\n",
            "sending_queue is disabled",
        ),
    ],
)
def test_exporter_without_retry_or_queue(tmp_path: Path, old: str, new: str, what: str) -> None:
    finding = only(run(write(tmp_path, GOOD.replace(old, new))), "exporter-retry-queue")
    assert what in finding.message and "'otlp_grpc'" in finding.message


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", ""])
def test_receiver_on_all_interfaces_without_auth(tmp_path: Path, host: str) -> None:
    path = write(tmp_path, GOOD)
    finding = only(run(path, env={"GRPC": f"{host}:4317"}), "open-receiver")
    assert "receivers.otlp.protocols.grpc" in finding.message
    assert finding.location.line == 8


def test_receiver_on_all_interfaces_with_auth_is_fine(tmp_path: Path) -> None:
    text = GOOD.replace(
        "        endpoint: ${env:GRPC:-127.0.0.1:4317}\n",
        "        endpoint: 0.0.0.0:4317\n        auth:\n          authenticator: bearertokenauth\n",
    ).replace("  health_check:\n", "  bearertokenauth:\n    token: t\n  health_check:\n")
    text = text.replace("extensions: [health_check]", "extensions: [health_check, bearertokenauth]")
    assert run(write(tmp_path, text)) == []


def test_authenticator_must_be_an_enabled_extension(tmp_path: Path) -> None:
    text = GOOD.replace(
        "        endpoint: ${env:GRPC:-127.0.0.1:4317}\n",
        "        endpoint: 127.0.0.1:4317\n"
        "        auth:\n          authenticator: bearertokenauth\n",
    )
    finding = only(run(write(tmp_path, text)), "undefined-component")
    assert "'bearertokenauth', which is not defined" in finding.message


def test_prometheus_exporter_without_openmetrics(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    enable_open_metrics: true\n", ""))
    finding = only(run(path), "prometheus-openmetrics")
    assert "exemplars" in finding.message and finding.location.line == 21


SAMPLING = """\
connectors:
  span_metrics: {}
processors:
  tail_sampling:
    policies: [{name: all, type: always_sample}]
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, tail_sampling, batch]
      exporters: [otlp_grpc, span_metrics]
    metrics:
      receivers: [otlp, span_metrics]
      processors: [memory_limiter, batch]
      exporters: [prometheus]
"""


def test_tail_sampling_before_span_metrics(tmp_path: Path) -> None:
    findings = run(write(tmp_path, GOOD), write(tmp_path, SAMPLING, "overlay.yaml"))
    finding = only(findings, "sampling-before-span-metrics")
    assert finding.location.file.name == "overlay.yaml" and finding.location.line == 10
    assert "'span_metrics'" in finding.message


def test_span_metrics_fed_before_sampling_is_fine(tmp_path: Path) -> None:
    fixed = SAMPLING.replace(
        "      exporters: [otlp_grpc, span_metrics]\n",
        "      exporters: [otlp_grpc]\n"
        "    traces/all:\n      receivers: [otlp]\n      processors: [memory_limiter]\n"
        "      exporters: [span_metrics]\n",
    )
    findings = run(write(tmp_path, GOOD), write(tmp_path, fixed, "overlay.yaml"))
    assert findings == []


def test_connector_used_on_one_side_only(tmp_path: Path) -> None:
    text = SAMPLING.replace("receivers: [otlp, span_metrics]", "receivers: [otlp]")
    findings = run(write(tmp_path, GOOD), write(tmp_path, text, "overlay.yaml"))
    assert "only used as an exporter" in only(findings, "half-connector").message


def test_no_health_check(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  extensions: [health_check]\n", ""))
    assert "no health_check" in only(run(path), "no-health-check").message


def test_overlay_replaces_lists_not_merges(tmp_path: Path) -> None:
    # The overlay's processors list replaces the base's: batch is gone, as the collector
    # would see it.
    overlay = "service:\n  pipelines:\n    traces:\n      processors: [memory_limiter]\n"
    findings = run(write(tmp_path, GOOD), write(tmp_path, overlay, "overlay.yaml"))
    finding = only(findings, "no-batching")
    assert finding.location.file.name == "overlay.yaml" and finding.location.line == 4


def test_unset_variable_without_default_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("endpoint: tempo:4317", "endpoint: ${env:TEMPO}"))
    finding = only(run(path), "unset-env")
    assert finding.severity == "warning" and "TEMPO" in finding.message
    assert run(path, env={"TEMPO": "tempo:4317"}) == []


def test_finding_format(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    enable_open_metrics: true\n", ""))
    text = str(only(run(path), "prometheus-openmetrics"))
    assert text.startswith(f"{path}:21: error: exporter 'prometheus'")
    assert text.endswith("[prometheus-openmetrics]")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("a: [", "invalid YAML"), ("- a\n- b\n", "top level must be a map")],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LintInputError, match=message):
        run(path)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LintInputError, match="collector build"):
        lint([write(tmp_path, GOOD)], binary=tmp_path / "nope", environ={})


def test_deprecated_type_name_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = GOOD.replace("  otlp_grpc:\n", "  otlp:\n").replace(
        "exporters: [otlp_grpc]", "exporters: [otlp]"
    )
    finding = only(run(write(tmp_path, text)), "deprecated-type")
    assert finding.severity == "warning" and "use 'otlp_grpc'" in finding.message


def _load_balancing(queue_extra: str = "") -> str:
    """GOOD with its exporter replaced by load_balancing, retry and queue per backend."""
    text = GOOD.replace(
        "  otlp_grpc:\n    endpoint: tempo:4317\n",
        "  load_balancing:\n    protocol:\n      otlp:\n        tls: {insecure: true}\n",
    ).replace("exporters: [otlp_grpc]", "exporters: [load_balancing]")
    return text.replace("    retry_on_failure:", "        retry_on_failure:").replace(
        "      enabled: true\n    sending_queue:\n      enabled: true\n",
        "          enabled: true\n        sending_queue:\n          enabled: true\n" + queue_extra,
    )


def test_load_balancing_retry_and_queue_may_sit_under_protocol_otlp(tmp_path: Path) -> None:
    text = _load_balancing()
    assert run(write(tmp_path, text)) == []
    missing = text.replace("        sending_queue:\n          enabled: true\n", "")
    assert (
        "sending_queue is missing"
        in only(run(write(tmp_path, missing)), "exporter-retry-queue").message
    )


def test_load_balancing_persistent_queue_per_backend_is_refused(tmp_path: Path) -> None:
    text = _load_balancing("          storage: file_storage/queue\n")
    finding = only(run(write(tmp_path, text)), "lb-shared-queue")
    assert "contrib #16826" in finding.message


# --- the shipped configs: secrets masked in every pipeline ------------------------------

SECRETS_PROCESSOR = "transform/secrets"
_OTTL_STRING = re.compile(r'"((?:\\.|[^\\"])*)"')


def shipped(role: str) -> MergedConfig:
    return load(role_files(role), {})


def secret_statements() -> list[str]:
    cfg = shipped("local").get("processors", SECRETS_PROCESSOR)
    return [
        statement
        for key in ("trace_statements", "log_statements", "metric_statements")
        for group in cfg[key]
        for statement in group["statements"]
    ]


def ottl_strings(statement: str) -> list[str]:
    # The collector turns `$$` into `$`; OTTL unquotes `\\` into `\` (no other escapes here).
    return [s.replace("\\\\", "\\") for s in _OTTL_STRING.findall(statement.replace("$$", "$"))]


def secret_pattern() -> re.Pattern[str]:
    patterns = {ottl_strings(s)[-2] for s in secret_statements()}
    assert len(patterns) == 1, "every transform/secrets statement must use the same pattern"
    return re.compile(patterns.pop())


def test_secret_statements_cover_every_place_and_write_the_library_mask() -> None:
    statements = secret_statements()
    for target in ("resource.attributes", "span.attributes", "span.status.message", "span.name",
                   "spanevent.attributes", "log.attributes", "log.body",
                   "datapoint.attributes"):  # fmt: skip
        assert any(f"({target}," in s for s in statements), target
    assert {ottl_strings(s)[-1] for s in statements} == {"${1}" + MASK}


EXTRA_NAMES = ["API_KEY", "X-Api-Key", "client_secret", "refresh_token", "api%5Fkey"]


@pytest.mark.parametrize("name", [*sorted(SENSITIVE_QUERY_PARAMS), *EXTRA_NAMES])
def test_secret_pattern_masks_what_the_library_masks_and_keeps_the_name(name: str) -> None:
    pattern = secret_pattern()

    def mask(text: str) -> str:
        # Go's ${1} is Python's \g<1>.
        return pattern.sub(lambda m: m.group(1) + MASK, text)

    assert mask(f"a=1&{name}=CANARY9&b=2") == f"a=1&{name}={MASK}&b=2"
    assert mask(f"/p?{name}=CANARY9") == f"/p?{name}={MASK}"
    assert mask(f'{{"{name}": "CANARY9"}}') == f'{{"{name}": "{MASK}"}}'
    assert mask(f"{{'{name}': 'CANARY9', 'n': 1}}") == f"{{'{name}': '{MASK}', 'n': 1}}"
    assert mask(f"header {name}: CANARY9 sent") == f"header {name}: {MASK} sent"


@pytest.mark.parametrize(
    "text", ["symbol=AAPL&side=buy&qty=5", "monkey=1&turkey=2", "signal: buy", "http://h:4318/v1"]
)
def test_secret_pattern_leaves_other_pairs_alone(text: str) -> None:
    assert secret_pattern().search(text) is None


@pytest.mark.parametrize("role", list(ROLES))
def test_every_otlp_pipeline_masks_secrets_before_anything_else_sees_them(role: str) -> None:
    pipelines = shipped(role).get("service", "pipelines")
    for name, body in pipelines.items():
        if "otlp" not in body["receivers"]:
            continue  # host metrics or a connector's output: already masked upstream
        procs = body["processors"]
        assert procs[:1] == ["memory_limiter"], (role, name)
        assert SECRETS_PROCESSOR in procs and "redaction" in procs, (role, name)
        # Before sampling, span metrics and label selection read the data.
        assert (
            procs.index(SECRETS_PROCESSOR)
            < procs.index("redaction")
            <= 2 + ("resource_detection" in procs)
        ), (role, name, procs)
