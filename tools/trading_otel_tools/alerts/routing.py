"""Alertmanager's routing tree, walked as Alertmanager walks it.

Which receivers an alert with given labels reaches, and the ``group_wait`` and
``group_interval`` each of those routes applies: set on the route or inherited from its
parents, else Alertmanager's defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Alertmanager's defaults for a tree that leaves the keys out.
DEFAULTS = {"group_wait": "30s", "group_interval": "5m"}

_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*')


@dataclass(frozen=True)
class Reached:
    """One receiver an alert reaches, with the timing of its route."""

    receiver: str
    group_wait: str
    group_interval: str
    group_wait_from: str
    """``root route``, ``<receiver> route`` or ``Alertmanager default``."""


def matches(route: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy the route's ``matchers`` (and legacy ``match``/``match_re``).

    Raises:
        ValueError: a matcher is not ``name op "value"``.
    """
    conditions = [(k, "=", str(v)) for k, v in (route.get("match") or {}).items()]
    conditions += [(k, "=~", str(v)) for k, v in (route.get("match_re") or {}).items()]
    for text in route.get("matchers") or []:
        m = _MATCHER.fullmatch(text)
        if m is None:
            raise ValueError(f"cannot read Alertmanager matcher {text!r}")
        conditions.append((m[1], m[2], m[3] if m[3] is not None else m[4]))
    for name, op, value in conditions:
        have = labels.get(name, "")  # a missing label matches as ""
        if op in {"=~", "!~"}:
            if (re.fullmatch(value, have) is not None) != (op == "=~"):
                return False
        elif (have == value) != (op == "="):
            return False
    return True


def _walk(
    node: Mapping[str, Any], labels: Mapping[str, str], inherited: dict[str, tuple[str, str]]
) -> list[dict[str, tuple[str, str]]]:
    # The first matching child takes the alert, and the next matching ones too while the
    # matches have `continue: true`; with no matching child the node itself does.
    settings = dict(inherited)
    name = str(node.get("receiver") or settings["receiver"][0])
    for key in ("receiver", "group_wait", "group_interval"):
        if key in node:
            settings[key] = (str(node[key]), f"{name} route" if inherited else "root route")
    out = []
    for child in node.get("routes") or []:
        if matches(child, labels):
            out += _walk(child, labels, settings)
            if not child.get("continue", False):
                break
    return out or [settings]


def reached(tree: Mapping[str, Any], labels: Mapping[str, str]) -> list[Reached]:
    """Every receiver an alert with ``labels`` reaches under ``tree`` (the ``route:`` map)."""
    if "receiver" not in tree:
        raise ValueError("the root route has no receiver")
    defaults = {k: (v, "Alertmanager default") for k, v in DEFAULTS.items()}
    out = []
    for found in _walk(tree, labels, {}):
        s = {**defaults, **found}
        out.append(
            Reached(
                s["receiver"][0], s["group_wait"][0], s["group_interval"][0], s["group_wait"][1]
            )
        )
    return out
