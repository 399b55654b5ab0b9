"""Every histogram view the library installs, built here once from the catalogue's buckets.

Without a view the SDK uses millisecond-scale default boundaries (0, 5, 10, 25 ...
10000), useless for latencies in seconds. Each view also picks the exemplar reservoir:
ours (lean, the span context read at collection) or the SDK's aligned-bucket one, which
keeps the same exemplars (``TRADING_OTEL_LEAN_METRICS``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from otel._internal.catalogue import CATALOGUE, INSTRUMENTATION_HISTOGRAMS
from otel._internal.recording import lean_reservoir_factory


def _view(name: str, buckets: Sequence[float], lean: bool) -> View:
    return View(
        instrument_name=name,
        aggregation=ExplicitBucketHistogramAggregation(boundaries=tuple(buckets)),
        exemplar_reservoir_factory=lean_reservoir_factory if lean else None,  # None: SDK's
    )


def histogram_views(lean: bool = True) -> list[View]:
    """One view per catalogue histogram, with its declared buckets."""
    return [
        _view(spec.name, spec.buckets, lean)
        for spec in CATALOGUE
        if spec.kind == "histogram" and spec.buckets is not None
    ]


def all_views(lean: bool = True) -> list[View]:
    """The catalogue's views and the instrumentations' (HTTP server and client, database)."""
    return [
        *histogram_views(lean),
        *(_view(name, buckets, lean) for name, buckets in INSTRUMENTATION_HISTOGRAMS.items()),
    ]
