"""The slice of the Prometheus HTTP API the investigation needs: range queries and exemplars."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from trading_otel_tools.investigate import otlp
from trading_otel_tools.investigate.model import Exemplar
from trading_otel_tools.ports import TOOL_PORTS


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query."""


class ExemplarStorageError(RuntimeError):
    """Prometheus does not keep exemplars, so spikes cannot be followed to traces."""


EXEMPLAR_HINT = (
    "start Prometheus with --enable-feature=exemplar-storage, and scrape the services "
    "(or the collector's Prometheus exporter) in the OpenMetrics format"
)


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (unix seconds, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class PrometheusClient:
    """A small client over ``/api/v1``; every failure is a :class:`PrometheusError`."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}"
        try:
            resp = self.client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.base_url} ({type(exc).__name__}: {exc}); "
                f"is it running? (trading-otel up starts one on :{TOOL_PORTS['prometheus']}; "
                "or pass --prometheus URL)"
            ) from exc
        try:
            body = resp.json()
        except ValueError as exc:
            raise PrometheusError(
                f"{url} answered HTTP {resp.status_code} with a non-JSON body: {resp.text[:200]!r}"
                " (is this really Prometheus?)"
            ) from exc
        if resp.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus refused {path} (HTTP {resp.status_code}): "
                f"{body.get('errorType', '')} {body.get('error', body)}".strip()
            )
        return body.get("data")

    def query_range(self, query: str, start: float, end: float, step: float) -> list[Series]:
        """Run a range query; NaN and infinite points are dropped."""
        data = self._get(
            "/api/v1/query_range",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}s"},
        )
        out = []
        for item in (data or {}).get("result", []):
            points = [(float(t), float(v)) for t, v in item.get("values", [])]
            points = [(t, v) for t, v in points if math.isfinite(v)]
            out.append(Series(dict(item.get("metric", {})), points))
        return out

    def query_exemplars(self, query: str, start: float, end: float) -> list[Exemplar]:
        """Exemplars of ``query`` between ``start`` and ``end`` that carry a trace id."""
        data = self._get(
            "/api/v1/query_exemplars",
            {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}"},
        )
        out = []
        for group in data or []:
            series = {str(k): str(v) for k, v in (group.get("seriesLabels") or {}).items()}
            for ex in group.get("exemplars") or []:
                labels = ex.get("labels") or {}
                trace_id = labels.get("trace_id") or labels.get("traceID") or labels.get("TraceID")
                if not trace_id:
                    continue
                try:
                    tid = otlp.normalize_id(trace_id, 16)
                    sid = otlp.normalize_id(labels.get("span_id") or labels.get("spanID") or "", 8)
                except otlp.OtlpFormatError:
                    continue
                out.append(Exemplar(tid, sid, float(ex["value"]), float(ex["timestamp"]), series))
        return out

    def exemplar_storage_enabled(self) -> bool | None:
        """Whether the server runs with exemplar storage; ``None`` when it cannot tell.

        Prometheus lists its command-line flags at ``/api/v1/status/flags``; exemplar
        storage is the ``exemplar-storage`` feature flag.
        """
        try:
            flags = self._get("/api/v1/status/flags", {})
        except PrometheusError:
            return None
        if not isinstance(flags, dict) or "enable-feature" not in flags:
            return None
        features = {f.strip() for f in str(flags["enable-feature"]).split(",")}
        return "exemplar-storage" in features
