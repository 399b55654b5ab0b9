"""Copies of span, log and metric batches with their bad text replaced (U+FFFD).

Items without bad text are passed on as they are; live spans and records, which other
processors may hold, are never changed. Resources and scopes shared by a batch are
cleaned once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from otel._internal.text import clean_attrs, clean_text, clean_value

T = TypeVar("T")


class Cleaner:
    """Cleans one batch: resources and scopes shared by many items are cleaned once."""

    def __init__(self) -> None:
        self.changed = 0  # items copied
        self.shared = False  # a resource, scope or metric description was cleaned
        self._resources: dict[int, Resource] = {}
        self._scopes: dict[int, InstrumentationScope | None] = {}

    def resource(self, resource: Resource) -> Resource:
        hit = self._resources.get(id(resource))
        if hit is None:
            attrs = clean_attrs(resource.attributes)
            if attrs is not resource.attributes:
                hit, self.shared = Resource(attrs or {}, resource.schema_url), True
            else:
                hit = resource
            self._resources[id(resource)] = hit
        return hit

    def scope(self, scope: InstrumentationScope | None) -> InstrumentationScope | None:
        if scope is None:
            return None
        if id(scope) not in self._scopes:
            name, version = clean_text(scope.name), scope.version and clean_text(scope.version)
            attrs = clean_attrs(scope.attributes)
            same = name is scope.name and version is scope.version and attrs is scope.attributes
            self.shared |= not same
            self._scopes[id(scope)] = (
                scope if same else InstrumentationScope(name, version, scope.schema_url, attrs)
            )
        return self._scopes[id(scope)]

    def batch(self, items: Sequence[T], one: Callable[[T], T]) -> list[T]:
        out = [one(item) for item in items]
        self.changed += sum(a is not b for a, b in zip(out, items, strict=True))
        return out


def _bounded(items: list[Any], dropped: int) -> Sequence[Any]:
    if not dropped:
        return items
    out = BoundedList.from_seq(None, items)
    out.dropped = dropped
    return out


def clean_spans(spans: Sequence[Any]) -> tuple[list[Any], int]:
    """Copies of the spans holding bad text (the others as they are), and how many."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    c = Cleaner()

    def event(e: Any) -> Any:
        name = clean_text(e.name)
        attrs = clean_attrs(e.attributes, getattr(e, "dropped_attributes", 0))
        if name is e.name and attrs is e.attributes:
            return e
        return Event(name, attrs, e.timestamp)

    def link(x: Any) -> Any:
        attrs = clean_attrs(x.attributes, getattr(x, "dropped_attributes", 0))
        return x if attrs is x.attributes else Link(x.context, attrs)

    def span(s: Any) -> Any:
        name = clean_text(s.name)
        raw = s.attributes
        attrs = clean_attrs(raw, s.dropped_attributes)
        events = [event(e) for e in s.events]
        links = [link(x) for x in s.links]
        status = s.status
        description = status.description and clean_text(status.description)
        resource, scope = c.resource(s.resource), c.scope(s.instrumentation_scope)
        if (
            name is s.name
            and attrs is raw
            and all(a is b for a, b in zip(events, s.events, strict=True))
            and all(a is b for a, b in zip(links, s.links, strict=True))
            and description is status.description
            and resource is s.resource
            and scope is s.instrumentation_scope
        ):
            return s
        if attrs is raw and s.dropped_attributes:
            attrs = BoundedAttributes(attributes=raw, immutable=True)
            attrs.dropped = s.dropped_attributes
        return ReadableSpan(
            name=name,
            context=s.get_span_context(),
            parent=s.parent,
            resource=resource,
            attributes=attrs,
            events=_bounded(events, s.dropped_events),
            links=_bounded(links, s.dropped_links),
            kind=s.kind,
            status=status
            if description is status.description
            else Status(status.status_code, description),
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=scope,
        )

    return c.batch(spans, span), c.changed


def clean_logs(records: Sequence[Any]) -> tuple[list[Any], int]:
    """Copies of the log records holding bad text (the others as they are), and how many."""
    import copy

    c = Cleaner()

    def record(readable: Any) -> Any:
        rec = readable.log_record
        body = clean_value(rec.body)
        attrs = clean_attrs(rec.attributes, readable.dropped_attributes)
        severity = rec.severity_text and clean_text(rec.severity_text)
        event_name = rec.event_name and clean_text(rec.event_name)
        resource = c.resource(readable.resource)
        scope = c.scope(readable.instrumentation_scope)
        if (
            body is rec.body
            and attrs is rec.attributes
            and severity is rec.severity_text
            and event_name is rec.event_name
            and resource is readable.resource
            and scope is readable.instrumentation_scope
        ):
            return readable
        new = copy.copy(rec)
        new.body, new.attributes = body, attrs
        new.severity_text, new.event_name = severity, event_name
        return dataclasses.replace(
            readable, log_record=new, resource=resource, instrumentation_scope=scope
        )

    return c.batch(records, record), c.changed


def clean_metrics(data: Any) -> tuple[Any, int]:
    """A copy of ``MetricsData`` with bad text cleaned, and how many points changed."""
    c = Cleaner()
    replace = dataclasses.replace

    def exemplar(ex: Any) -> Any:
        attrs = clean_attrs(ex.filtered_attributes)
        return ex if attrs is ex.filtered_attributes else replace(ex, filtered_attributes=attrs)

    def point(dp: Any) -> Any:
        attrs = clean_attrs(dp.attributes)
        exemplars = [exemplar(e) for e in dp.exemplars or ()]
        if attrs is dp.attributes and all(
            a is b for a, b in zip(exemplars, dp.exemplars or (), strict=True)
        ):
            return dp
        return replace(dp, attributes=attrs, exemplars=exemplars)

    def metric(m: Any) -> Any:
        points = c.batch(m.data.data_points, point)
        description = m.description and clean_text(m.description)
        unit = m.unit and clean_text(m.unit)
        c.shared |= description is not m.description or unit is not m.unit
        return replace(
            m, description=description, unit=unit, data=replace(m.data, data_points=points)
        )

    def scope_metrics(sm: Any) -> Any:
        return replace(sm, scope=c.scope(sm.scope), metrics=[metric(m) for m in sm.metrics])

    out = replace(
        data,
        resource_metrics=[
            replace(
                rm,
                resource=c.resource(rm.resource),
                scope_metrics=[scope_metrics(sm) for sm in rm.scope_metrics],
            )
            for rm in data.resource_metrics
        ],
    )
    # Text outside the points (resource, scope, description) counts as one change.
    return out, c.changed or int(c.shared)
