"""Snapshot what a running system exposes: label sets from Prometheus or a /metrics page."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from prometheus_client.parser import text_string_to_metric_families


class RecordError(RuntimeError):
    """A source could not be read; the message names it and says why."""


def prometheus_series(base_url: str, start: float, end: float) -> list[dict[str, str]]:
    """Every series Prometheus holds between ``start`` and ``end`` (its label sets).

    Raises:
        RecordError: Prometheus is unreachable or refused the query.
    """
    try:
        resp = httpx.get(
            f"{base_url}/api/v1/series",
            params={"match[]": '{__name__=~".+"}', "start": f"{start:.3f}", "end": f"{end:.3f}"},
            timeout=30,
        )
        body = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise RecordError(f"cannot read series from Prometheus at {base_url}: {exc}") from exc
    if body.get("status") != "success":
        raise RecordError(f"Prometheus at {base_url} refused the series query: {body}")
    data: list[dict[str, str]] = body["data"]
    return data


def endpoint_series(url: str) -> list[dict[str, str]]:
    """The label sets of every sample on a Prometheus text-format page (``/metrics``).

    Raises:
        RecordError: the page cannot be fetched or parsed.
    """
    try:
        resp = httpx.get(url, timeout=10)
        resp.raise_for_status()
        return list(_samples(resp.text))
    except (httpx.HTTPError, ValueError) as exc:
        raise RecordError(f"cannot read metrics from {url}: {exc}") from exc


def _samples(text: str) -> Iterator[dict[str, str]]:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield {"__name__": sample.name, **sample.labels}
