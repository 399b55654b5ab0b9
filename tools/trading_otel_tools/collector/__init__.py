"""Our OpenTelemetry Collector distribution: build it with ocb, lint its pipeline configs."""

from __future__ import annotations
