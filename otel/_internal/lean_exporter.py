"""The OTLP/HTTP span and log exporters with the lean encoder of :mod:`otel._internal.otlp_wire`.

Everything but the encoding is the SDK exporter's own: its HTTP client (endpoint,
headers, compression, certificates, retries, timeout from the ``OTEL_EXPORTER_OTLP_*``
variables), its size limit and its self-metrics. If the lean encoder fails on a batch,
the SDK's encoder encodes it; if the SDK's shape is not the one we know (another
version), the batch goes through the SDK's ``export``.

On every one of these paths, a batch that cannot be encoded because of text UTF-8
cannot hold (a lone surrogate) is cleaned and sent again: :mod:`otel._internal.encode_retry`.
The OTLP/HTTP metric exporter is here for the same reason.

``stock=True`` (``TRADING_OTEL_LEAN_ENCODER=false``) uses none of the SDK exporter's
private parts: every batch goes through the SDK's own ``export``, cleaned up front.
The lean encoder (:mod:`otel._internal.otlp_wire`, which imports the SDK's private
encoder helpers) is imported only when an exporter is built with it; if that import
fails on another SDK version, the exporter uses the SDK's encoder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import metric_exporter as _sdk_metrics
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from otel._internal.clean_batches import clean_logs, clean_metrics, clean_spans
from otel._internal.encode_retry import encode_or_clean, report_cleaned

_log = logging.getLogger("otel.exporters")
B = TypeVar("B")
E = TypeVar("E")  # an export result


def _send(exporter: Any, data: bytes, n: int) -> bool | None:
    """POST ``data`` with the SDK exporter's own client; None: let the SDK do it all."""
    if len(data) > exporter._max_request_size:
        return None  # the SDK logs and reports the oversized batch
    with exporter._metrics.export_operation(n) as result:
        sent = exporter._client.export(data)
        if not sent.success:
            result.error = sent.error
            status = getattr(sent, "status_code", None)
            if status is not None:
                result.error_attrs = {"http.response.status_code": status}
            return False
    return True


def _init_sdk_exporter(
    exporter: Any, sdk_init: Callable[..., None], stock: bool, kwargs: dict[str, Any]
) -> None:
    """Run the SDK exporter's ``__init__``; ours get a session that reads the environment once.

    The stock path, and a caller's own ``session``, are left as they are.
    """
    if stock or "session" in kwargs:
        sdk_init(**kwargs)
        return
    import requests

    session = requests.Session()
    sdk_init(session=session, **kwargs)
    _read_env_once(exporter, session)


def _read_env_once(exporter: Any, session: Any) -> None:
    """Read the proxy and CA-bundle variables for the exporter's endpoint now, not per POST.

    A session that trusts the environment scans every variable for proxies, checks
    ``NO_PROXY`` and looks for a ``.netrc`` on each request: about 0.2 ms of CPU per
    export here, on the export thread, which holds the GIL. The same settings are read
    once; the endpoint and the variables do not change while the process runs.
    """
    import requests.utils

    endpoint = getattr(exporter, "_endpoint", None)
    if not isinstance(endpoint, str) or session.trust_env is False:
        return  # another SDK shape: requests reads the environment per request, as before
    session.proxies = requests.utils.get_environ_proxies(endpoint)
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False


def _usable(exporter: Any) -> bool:
    # Private SDK parts we reuse; absent on another SDK version -> stock export.
    return all(hasattr(exporter, n) for n in ("_client", "_metrics", "_max_request_size"))


def _sdk_export(
    export: Callable[[B], E], batch: B, clean: Callable[[B], tuple[B, int]], what: str
) -> E:
    """The SDK's whole ``export`` of ``batch``, cleaned first.

    Only for an SDK whose private parts we do not know. Its ``export`` swallows an
    encoding error, and its encoder leaves out an attribute it cannot encode, so there
    is nothing to retry on: the batch is cleaned up front (copies only where needed).
    """
    cleaned, changed = clean(batch)
    if changed:
        report_cleaned(what, changed)
    return export(cleaned)


def _lean_encoder(lean: bool) -> Any:
    """A :class:`~otel._internal.otlp_wire.SpanEncoder`, or None (SDK encoder)."""
    if not lean:
        return None
    try:
        from otel._internal.otlp_wire import SpanEncoder
    except ImportError:  # the SDK moved its encoder helpers: its own encoder still works
        _log.warning("the lean OTLP encoder is unavailable with this SDK; using the SDK's")
        return None
    return SpanEncoder()


def _stock_spans(spans: Sequence[ReadableSpan]) -> bytes:
    data: bytes = encode_spans(spans).SerializePartialToString()  # as the SDK exporter does
    return data


def _stock_logs(batch: Sequence[ReadableLogRecord]) -> bytes:
    data: bytes = encode_logs(batch).SerializeToString()
    return data


class LeanHttpSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (HTTP/protobuf) that serialises batches ~4x cheaper.

    Args:
        lean: False encodes with the SDK's encoder (still sent by the SDK's client).
        stock: True sends every batch through the SDK's own ``export``, cleaned first.
        **kwargs: The SDK exporter's own arguments.
    """

    def __init__(self, *, lean: bool = True, stock: bool = False, **kwargs: Any) -> None:
        _init_sdk_exporter(self, super().__init__, stock, kwargs)
        self._lean = None if stock else _lean_encoder(lean)
        self._lean_ok = not stock and _usable(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode ``spans`` with the lean encoder and send them with the SDK's client."""
        if getattr(self, "_shutdown", False):
            return super().export(spans)
        if not self._lean_ok:
            return _sdk_export(super().export, spans, clean_spans, "spans")
        data = None
        if self._lean is not None:
            try:
                data = self._lean.encode(spans)
            except Exception:  # an attribute shape we did not foresee: the SDK knows best
                _log.debug("lean span encoding failed; using the SDK encoder", exc_info=True)
        if data is None:
            try:
                data = encode_or_clean(_stock_spans, spans, clean_spans, "spans")
            except Exception:
                return super().export(spans)  # the SDK logs why
        ok = _send(self, data, len(spans))
        if ok is None:
            return super().export(spans)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE


class LeanHttpLogExporter(OTLPLogExporter):
    """``OTLPLogExporter`` (HTTP/protobuf) with the lean encoder (arguments as for spans)."""

    def __init__(self, *, lean: bool = True, stock: bool = False, **kwargs: Any) -> None:
        _init_sdk_exporter(self, super().__init__, stock, kwargs)
        self._lean = None if stock else _lean_encoder(lean)
        self._lean_ok = not stock and _usable(self)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Encode ``batch`` with the lean encoder and send it with the SDK's client."""
        if getattr(self, "_shutdown", False):
            return super().export(batch)
        if not self._lean_ok:
            return _sdk_export(super().export, batch, clean_logs, "log records")
        data = None
        if self._lean is not None:
            try:
                data = self._lean.encode_logs(batch)
            except Exception:
                _log.debug("lean log encoding failed; using the SDK encoder", exc_info=True)
        if data is None:
            try:
                data = encode_or_clean(_stock_logs, batch, clean_logs, "log records")
            except Exception:
                return super().export(batch)
        ok = _send(self, data, len(batch))
        if ok is None:
            return super().export(batch)
        return LogRecordExportResult.SUCCESS if ok else LogRecordExportResult.FAILURE


class HttpMetricExporter(OTLPMetricExporter):
    """``OTLPMetricExporter`` (HTTP/protobuf) that delivers points holding bad text.

    The SDK's encoder, its batching and its client; only the encoding step is ours, so
    that a point with a lone surrogate is cleaned instead of failing the whole export.

    Args:
        stock: True sends through the SDK's own ``export``, cleaned first.
        **kwargs: The SDK exporter's own arguments.
    """

    def __init__(self, *, stock: bool = False, **kwargs: Any) -> None:
        _init_sdk_exporter(self, super().__init__, stock, kwargs)
        self._stock = stock

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        """Encode ``metrics_data`` (cleaned if it must be) and send it in batches."""
        split = getattr(_sdk_metrics, "_split_metrics_data", None)
        if getattr(self, "_shutdown", False):
            return super().export(metrics_data, timeout_millis, **kwargs)
        if self._stock or split is None or not hasattr(self, "_export_batch"):
            return _sdk_export(
                lambda d: super(HttpMetricExporter, self).export(d, timeout_millis, **kwargs),
                metrics_data,
                clean_metrics,
                "metric points",
            )
        try:
            request = encode_or_clean(encode_metrics, metrics_data, clean_metrics, "metric points")
        except Exception:
            return super().export(metrics_data, timeout_millis, **kwargs)  # the SDK logs why
        size: int | None = getattr(self, "_max_export_batch_size", None)
        if size is None:
            result: MetricExportResult = self._export_batch(request)
            return result
        for batch in split(request, size):
            if self._export_batch(batch) is not MetricExportResult.SUCCESS:
                return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS
