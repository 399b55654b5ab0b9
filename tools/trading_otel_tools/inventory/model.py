"""The recorded inventory: series names, their label keys, and what produced them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trading_otel_tools import home

#: The phase name of series that exist in a healthy stack under plain order load.
BASELINE = "baseline"

#: Label keys Prometheus itself adds to every scraped series (and the name).
SCRAPE_LABELS = frozenset({"__name__", "job", "instance"})


@dataclass
class SeriesName:
    """One series name as a source exposes it.

    Attributes:
        labels: Every label key seen on any series of that name.
        when: ``baseline``, or the first fault/action phase in which the name appeared.
    """

    labels: set[str] = field(default_factory=set)
    when: str = BASELINE

    def to_json(self) -> dict[str, Any]:
        return {"labels": sorted(self.labels), "when": self.when}


@dataclass
class Inventory:
    """Series names per source (``prometheus``, ``collector-gateway``...), with versions."""

    sources: dict[str, dict[str, SeriesName]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)
    recorded: str = ""

    def add(self, source: str, labelsets: Iterable[Mapping[str, str]], phase: str) -> list[str]:
        """Merge one snapshot of ``source``; returns the names seen for the first time."""
        names = self.sources.setdefault(source, {})
        new: list[str] = []
        for labels in labelsets:
            name = labels.get("__name__")
            if not name:
                continue
            entry = names.get(name)
            if entry is None:
                entry = names[name] = SeriesName(when=phase)
                new.append(name)
            entry.labels.update(k for k in labels if k != "__name__")
        if phase not in self.phases:
            self.phases.append(phase)
        return sorted(new)

    def names(self, source: str | None = None) -> dict[str, SeriesName]:
        """Every name of one source, or of all sources merged (label keys united)."""
        if source is not None:
            return dict(self.sources.get(source, {}))
        merged: dict[str, SeriesName] = {}
        for entries in self.sources.values():
            for name, entry in entries.items():
                into = merged.setdefault(name, SeriesName(when=entry.when))
                into.labels |= entry.labels
                if entry.when == BASELINE:
                    into.when = BASELINE
        return merged

    def to_json(self) -> dict[str, Any]:
        return {
            "about": "Series names and label keys recorded from the real local stack "
            "(make inventory). 'when' is the phase in which a name first appeared: "
            "'baseline' is a healthy stack under order load, otherwise the fault or "
            "action that produces it.",
            "recorded": self.recorded,
            "versions": dict(sorted(self.versions.items())),
            "phases": list(self.phases),
            "sources": {
                src: {n: e.to_json() for n, e in sorted(names.items())}
                for src, names in sorted(self.sources.items())
            },
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Inventory:
        sources = {
            src: {
                n: SeriesName(set(e.get("labels", [])), str(e.get("when", BASELINE)))
                for n, e in names.items()
            }
            for src, names in doc.get("sources", {}).items()
        }
        return cls(sources, dict(doc.get("versions", {})), list(doc.get("phases", [])),
                   str(doc.get("recorded", "")))  # fmt: skip

    def save(self, path: Path | None = None) -> None:
        path = path or home.checkout().inventory
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path | None = None) -> Inventory:
        """Read a saved inventory.

        Raises:
            FileNotFoundError: no inventory at ``path`` (run ``make inventory``).
            ValueError: the file is not an inventory.
        """
        path = path or home.checkout().inventory
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or "sources" not in doc:
            raise ValueError(f"{path} is not a signal inventory (no 'sources')")
        return cls.from_json(doc)


@dataclass(frozen=True)
class Change:
    """How one name differs between two inventories."""

    source: str
    name: str
    kind: str  # "added" | "removed" | "labels"
    detail: str = ""

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "labels": "~"}[self.kind]
        return f"{sign} {self.source}: {self.name}" + (f" ({self.detail})" if self.detail else "")


def diff(old: Inventory, new: Inventory) -> list[Change]:
    """Names added, removed, or with other label keys, from ``old`` to ``new``."""
    changes: list[Change] = []
    for source in sorted(set(old.sources) | set(new.sources)):
        before, after = old.names(source), new.names(source)
        for name in sorted(set(before) | set(after)):
            if name not in before:
                changes.append(Change(source, name, "added"))
            elif name not in after:
                changes.append(Change(source, name, "removed"))
            elif before[name].labels != after[name].labels:
                gone = sorted(before[name].labels - after[name].labels)
                came = sorted(after[name].labels - before[name].labels)
                detail = ", ".join([f"-{k}" for k in gone] + [f"+{k}" for k in came])
                changes.append(Change(source, name, "labels", detail))
    return changes
