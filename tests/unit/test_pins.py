"""The FastAPI and OpenTelemetry pins are ranges whose both ends CI tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from trading_otel_tools.oldest import PinError, constraints, lower_bounds, requirements

REPO = Path(__file__).resolve().parents[2]


def test_oldest_constraints_cover_fastapi_and_every_opentelemetry_requirement() -> None:
    text = constraints(REPO)
    pinned = dict(line.split("==") for line in text.splitlines()[1:])
    reqs = requirements(REPO / "pyproject.toml") + requirements(REPO / "tools" / "pyproject.toml")
    family = {r.name for r in reqs if r.name == "fastapi" or r.name.startswith("opentelemetry-")}
    assert set(pinned) == family
    assert {"fastapi", "opentelemetry-sdk", "opentelemetry-api"} <= set(pinned)


@pytest.mark.parametrize("text", ["opentelemetry-sdk", "opentelemetry-sdk>=1.45", "fastapi<1"])
def test_an_open_range_is_refused(text: str) -> None:
    with pytest.raises(PinError, match="lower and an upper bound"):
        lower_bounds([Requirement(text)])


def test_two_lower_bounds_for_one_package_are_refused() -> None:
    reqs = [Requirement("opentelemetry-api>=1.45,<2"), Requirement("opentelemetry-api>=1.44,<2")]
    with pytest.raises(PinError, match="two lower bounds"):
        lower_bounds(reqs)


def test_other_requirements_are_left_to_the_resolver() -> None:
    assert lower_bounds([Requirement("redis>=5.2"), Requirement("fastapi>=0.142,<0.170")]) == {
        "fastapi": "0.142"
    }
