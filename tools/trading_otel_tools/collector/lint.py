"""``trading-otel collector lint``: catch the pipeline mistakes that lose or leak telemetry.

Static checks run on the merged config (files merged and ``${env:...}`` expanded exactly
like ``--config a --config b``); then the built binary's ``validate`` runs on the same
files and its complaint is reported in the same form.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from trading_otel_tools import home
from trading_otel_tools.collector import build as building
from trading_otel_tools.collector.config import (
    ConfigLoadError,
    Finding,
    MergedConfig,
    Severity,
    load,
)
from trading_otel_tools.collector.validate import run_validate

__all__ = ["Finding", "LintInputError", "Severity", "default_binary", "lint", "overlay_hint"]

MARKER_BINARY = Path("bin") / building.BINARY_NAME

KINDS = ("receivers", "processors", "exporters", "connectors", "extensions")
PIPELINE_ROLES = ("receivers", "processors", "exporters")
#: Exporters that write locally or are scraped: they have no remote peer to retry against.
LOCAL_EXPORTERS = {"debug", "file", "prometheus", "nop"}
SPAN_METRIC_CONNECTORS = {"span_metrics", "spanmetrics", "servicegraph", "service_graph"}
HEALTH_CHECKS = {"health_check", "healthcheckv2"}
_ALL_INTERFACES = {"0.0.0.0", "::", "[::]", ""}
#: Old type names the binary still accepts (with a deprecation warning in its log).
DEPRECATED_TYPES: dict[str, dict[str, str]] = {
    "receivers": {"hostmetrics": "host_metrics"},
    "processors": {"resourcedetection": "resource_detection", "tailsampling": "tail_sampling"},
    "exporters": {
        "otlp": "otlp_grpc",
        "otlphttp": "otlp_http",
        "prometheusremotewrite": "prometheus_remote_write",
        "loadbalancing": "load_balancing",
    },
    "connectors": {"spanmetrics": "span_metrics"},
    "extensions": {},
}


class LintInputError(ValueError):
    """The files cannot be linted at all (missing, not YAML...)."""


def ctype(component_id: str) -> str:
    """The type part of a component id: ``otlp_grpc/tempo`` -> ``otlp_grpc``."""
    return component_id.split("/", 1)[0]


def _pipelines(cfg: MergedConfig) -> dict[str, dict[str, list[str]]]:
    raw = cfg.get("service", "pipelines")
    out: dict[str, dict[str, list[str]]] = {}
    if isinstance(raw, Mapping):
        for name, body in raw.items():
            body = body if isinstance(body, Mapping) else {}
            out[str(name)] = {
                role: [str(x) for x in (body.get(role) or [])] for role in PIPELINE_ROLES
            }
    return out


def _section(cfg: MergedConfig, kind: str) -> dict[str, Any]:
    raw = cfg.get(kind)
    return (
        {str(k): (v if v is not None else {}) for k, v in raw.items()}
        if isinstance(raw, Mapping)
        else {}
    )


def check_references(cfg: MergedConfig) -> Iterator[Finding]:
    """Components used but not defined, defined but unused, and half-wired connectors."""
    pipelines = _pipelines(cfg)
    defined = {kind: _section(cfg, kind) for kind in KINDS}
    connectors = defined["connectors"]
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    conn_in: set[str] = set()
    conn_out: set[str] = set()
    for pname, body in pipelines.items():
        for role in PIPELINE_ROLES:
            for i, cid in enumerate(body[role]):
                where = cfg.where("service", "pipelines", pname, role, str(i))
                if role != "processors" and cid in connectors:
                    (conn_in if role == "receivers" else conn_out).add(cid)
                    used["connectors"].add(cid)
                    continue
                used[role].add(cid)
                if cid not in defined[role]:
                    yield Finding(
                        where, "error", "undefined-component",
                        f"pipeline {pname!r} uses {role[:-1]} {cid!r}, which is not defined "
                        f"under `{role}:`" + (" or `connectors:`" if role != "processors" else ""),
                    )  # fmt: skip
        if not body["receivers"] or not body["exporters"]:
            yield Finding(
                cfg.where("service", "pipelines", pname), "error", "empty-pipeline",
                f"pipeline {pname!r} needs at least one receiver and one exporter",
            )  # fmt: skip
    exts = cfg.get("service", "extensions") or []
    for i, cid in enumerate(exts):
        used["extensions"].add(str(cid))
        if cid not in defined["extensions"]:
            yield Finding(
                cfg.where("service", "extensions", str(i)), "error", "undefined-component",
                f"service.extensions lists {cid!r}, which is not defined under `extensions:`",
            )  # fmt: skip
    for cid in sorted(conn_in ^ conn_out):
        side = "an exporter" if cid in conn_out else "a receiver"
        yield Finding(
            cfg.where("connectors", cid), "error", "half-connector",
            f"connector {cid!r} is only used as {side}; it must end one pipeline and start "
            "another",
        )  # fmt: skip
    for kind in KINDS:
        for cid in sorted(set(defined[kind]) - used[kind]):
            where_used = "service.extensions" if kind == "extensions" else "any pipeline"
            yield Finding(
                cfg.where(kind, cid), "error", "unused-component",
                f"{kind[:-1]} {cid!r} is defined but not in {where_used}; the collector "
                "silently ignores it (a forgotten wiring step?)",
            )  # fmt: skip
    yield from _check_extension_refs(cfg, defined["extensions"], used["extensions"])


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, node
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, (*path, str(i)))


def _check_extension_refs(
    cfg: MergedConfig, defined: Mapping[str, Any], enabled: set[str]
) -> Iterator[Finding]:
    """``auth.authenticator`` and ``sending_queue.storage`` must name enabled extensions."""
    for kind in ("receivers", "exporters"):
        for path, value in _walk(cfg.get(kind), (kind,)):
            if path[-1] not in ("authenticator", "storage") or not isinstance(value, str):
                continue
            if value not in defined or value not in enabled:
                state = "not defined" if value not in defined else "not in service.extensions"
                yield Finding(
                    cfg.where(*path), "error", "undefined-component",
                    f"{'.'.join(path)} names extension {value!r}, which is {state}",
                )  # fmt: skip


def check_types(cfg: MergedConfig, known: Mapping[str, set[str]]) -> Iterator[Finding]:
    """Every component type must be built into our distribution."""
    for kind in KINDS:
        for cid in _section(cfg, kind):
            kind_known = known.get(kind, set())
            new_name = DEPRECATED_TYPES.get(kind, {}).get(ctype(cid))
            if new_name in kind_known:
                yield Finding(
                    cfg.where(kind, cid), "warning", "deprecated-type",
                    f"{kind[:-1]} type {ctype(cid)!r} is a deprecated name; use {new_name!r}",
                )  # fmt: skip
            elif ctype(cid) not in kind_known:
                names = ", ".join(sorted(kind_known))
                yield Finding(
                    cfg.where(kind, cid), "error", "unknown-type",
                    f"{kind[:-1]} type {ctype(cid)!r} is not in our distribution "
                    f"(collector/manifest.yaml); available: {names}",
                )  # fmt: skip


def check_pipelines(cfg: MergedConfig) -> Iterator[Finding]:
    """Processor order, batching and the sampler/span-metrics order."""
    pipelines = _pipelines(cfg)
    exporters = _section(cfg, "exporters")
    connectors = set(_section(cfg, "connectors"))
    for pname, body in pipelines.items():
        procs = [ctype(p) for p in body["processors"]]
        where = cfg.where("service", "pipelines", pname, "processors")
        if "memory_limiter" in procs and procs[0] != "memory_limiter":
            pos = procs.index("memory_limiter") + 1
            yield Finding(
                where, "error", "memory-limiter-first",
                f"pipeline {pname!r}: memory_limiter is at position {pos}; "
                "it must be first, or the processors before it can exhaust memory",
            )  # fmt: skip
        elif "memory_limiter" not in procs:
            yield Finding(
                where, "warning", "memory-limiter-first",
                f"pipeline {pname!r} has no memory_limiter",
            )  # fmt: skip
        real = [e for e in body["exporters"] if e not in connectors]
        batched = "batch" in procs or all(
            isinstance(exporters.get(e), Mapping)
            and isinstance(exporters[e].get("sending_queue"), Mapping)
            and exporters[e]["sending_queue"].get("batch") is not None
            for e in real
        )
        if real and not batched:
            yield Finding(
                where, "error", "no-batching",
                f"pipeline {pname!r} exports to {', '.join(real)} without a batch processor "
                "(or sending_queue.batch on every exporter)",
            )  # fmt: skip
    yield from _check_sampling_order(cfg, pipelines, connectors)


def _check_sampling_order(
    cfg: MergedConfig, pipelines: Mapping[str, Mapping[str, list[str]]], connectors: set[str]
) -> Iterator[Finding]:
    # Follow connectors downstream from every pipeline that samples: span metrics fed
    # from there would only count the kept traces, so rates and latencies would be wrong.
    for pname, body in pipelines.items():
        if "tail_sampling" not in [ctype(p) for p in body["processors"]]:
            continue
        seen, todo = {pname}, [pname]
        while todo:
            current = pipelines[todo.pop()]
            for exp in current["exporters"]:
                if ctype(exp) in SPAN_METRIC_CONNECTORS:
                    yield Finding(
                        cfg.where("service", "pipelines", pname, "processors"), "error",
                        "sampling-before-span-metrics",
                        f"pipeline {pname!r} tail-samples before connector {exp!r}: span "
                        "metrics would only see sampled traces; feed it from a pipeline "
                        "without tail_sampling",
                    )  # fmt: skip
                if exp in connectors:
                    for nxt, nbody in pipelines.items():
                        if exp in nbody["receivers"] and nxt not in seen:
                            seen.add(nxt)
                            todo.append(nxt)


def check_exporters(cfg: MergedConfig, used: set[str]) -> Iterator[Finding]:
    """Remote exporters need retry and a queue; the Prometheus exporter needs OpenMetrics."""
    for cid, body in _section(cfg, "exporters").items():
        if cid not in used:
            continue
        body = body if isinstance(body, Mapping) else {}
        kind = ctype(cid)
        if kind == "prometheus" and body.get("enable_open_metrics") is not True:
            yield Finding(
                cfg.where("exporters", cid), "error", "prometheus-openmetrics",
                f"exporter {cid!r} does not set enable_open_metrics: true; exemplars are only "
                "exposed in OpenMetrics format and would be lost",
            )  # fmt: skip
        if kind in LOCAL_EXPORTERS:
            continue
        # The remote-write exporter names its queue differently.
        prw = kind in ("prometheus_remote_write", "prometheusremotewrite")
        queue_key = "remote_write_queue" if prw else "sending_queue"
        # load_balancing may configure them per backend, under protocol.otlp.
        nested = (body.get("protocol") or {}).get("otlp") if "balancing" in kind else None
        per_backend = nested.get("sending_queue") if isinstance(nested, Mapping) else None
        if isinstance(per_backend, Mapping) and per_backend.get("storage"):
            yield Finding(
                cfg.where("exporters", cid, "protocol"), "error", "lb-shared-queue",
                f"exporter {cid!r}: a persistent queue under protocol.otlp is shared by every "
                "backend's exporter (they get one component id), so only the first backend "
                "can open it and the others' data is refused (contrib #16826); put "
                "sending_queue with its storage on the load_balancing exporter itself",
            )  # fmt: skip
        for key in ("retry_on_failure", queue_key):
            block = body.get(key)
            if not isinstance(block, Mapping) and isinstance(nested, Mapping):
                block = nested.get(key)
            if not isinstance(block, Mapping) or block.get("enabled") is False:
                what = "missing" if not isinstance(block, Mapping) else "disabled"
                yield Finding(
                    cfg.where("exporters", cid, key), "error", "exporter-retry-queue",
                    f"exporter {cid!r}: {key} is {what}; a backend hiccup would drop data",
                )  # fmt: skip


def _is_all_interfaces(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    host = re.sub(r"^[a-z]+://", "", host)
    return host in _ALL_INTERFACES


def check_receivers(cfg: MergedConfig) -> Iterator[Finding]:
    """A receiver listening on every interface must require auth."""
    for path, value in _walk(cfg.get("receivers"), ("receivers",)):
        if path[-1] != "endpoint" or not isinstance(value, str):
            continue
        parent = cfg.get(*path[:-1])
        if _is_all_interfaces(value) and not (
            isinstance(parent, Mapping) and isinstance(parent.get("auth"), Mapping)
        ):
            yield Finding(
                cfg.where(*path), "error", "open-receiver",
                f"{'.'.join(path[:-1])} listens on {value!r} (all interfaces) without auth; "
                "bind 127.0.0.1 or add auth.authenticator",
            )  # fmt: skip


def check_health(cfg: MergedConfig) -> Iterator[Finding]:
    """Something must answer readiness probes."""
    exts = [ctype(str(e)) for e in (cfg.get("service", "extensions") or [])]
    if not HEALTH_CHECKS & set(exts):
        yield Finding(
            cfg.where("service", "extensions"), "error", "no-health-check",
            "no health_check extension in service.extensions; orchestrators and our launcher "
            "cannot tell when the collector is ready",
        )  # fmt: skip


def known_types(binary: Path | None) -> dict[str, set[str]]:
    """Component types of our distribution: from the binary when built, else the manifest."""
    if binary is not None and binary.is_file():
        return {k: set(v) for k, v in building.components(binary).items()}
    return building.manifest_types()


def default_binary() -> Path:
    """The checkout's built collector, else ``otelcol-trading`` on PATH.

    Raises:
        LintInputError: Neither exists (outside a checkout: pass ``--binary`` or
            ``--no-validate``).
    """
    root = home.find_home()
    if root is not None and (root / MARKER_BINARY).is_file():
        return root / MARKER_BINARY
    found = shutil.which(building.BINARY_NAME)
    if found:
        return Path(found)
    where = f"{root / MARKER_BINARY} does not exist" if root else "no checkout here"
    raise LintInputError(
        f"{where} and {building.BINARY_NAME} is not on PATH; run `trading-otel collector "
        "build`, or pass --binary PATH or --no-validate"
    )


def lint(
    files: Sequence[Path],
    *,
    binary: Path | None,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Lint ``files`` merged in order.

    Args:
        files: Config files, in ``--config`` order.
        binary: Our built collector, for its component list and ``validate``; ``None``
            skips ``validate`` and reads component types from the manifest.
        environ: Values for ``${env:...}`` (default: this process's environment).

    Returns:
        Findings sorted by file and line; any with severity ``error`` fails the lint.

    Raises:
        LintInputError: A file is missing or is not a YAML map; or ``binary`` is given
            but was never built.
    """
    env = dict(os.environ if environ is None else environ)
    try:
        cfg = load(list(files), env)
    except ConfigLoadError as exc:
        raise LintInputError(str(exc)) from exc
    if binary is not None and not binary.is_file():
        raise LintInputError(
            f"{binary} does not exist; run `trading-otel collector build` (or --no-validate)"
        )
    used_exporters = {e for p in _pipelines(cfg).values() for e in p["exporters"]}
    findings = [
        *check_references(cfg),
        *check_types(cfg, known_types(binary)),
        *check_pipelines(cfg),
        *check_exporters(cfg, used_exporters),
        *check_receivers(cfg),
        *check_health(cfg),
    ]
    for name, where in cfg.unset_vars.items():
        findings.append(Finding(
            where, "warning", "unset-env",
            f"${{env:{name}}} is not set and has no default; it expands to an empty value",
        ))  # fmt: skip
    if binary is not None:
        findings.extend(run_validate(files, binary, env, cfg))
    return sorted(findings, key=lambda f: (str(f.location.file), f.location.line or 0))


def overlay_hint(files: Sequence[Path], findings: Sequence[Finding]) -> str | None:
    """A hint when one overlay was linted without the base it is written against.

    Our overlays (``local.yaml``, ``agent.yaml`` ...) only make sense on top of
    ``common.yaml``; linted alone, every shared component reads as undefined.
    """
    if len(files) != 1 or not any(f.rule == "undefined-component" for f in findings):
        return None
    base = files[0].with_name("common.yaml")
    if files[0].name == base.name or not base.is_file():
        return None
    return (
        f"hint: {files[0]} is linted alone; if it is an overlay, pass its base first: "
        f"trading-otel collector lint {base} {files[0]}"
    )
