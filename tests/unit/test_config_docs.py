"""docs/configuration.md: its variable tables are generated from the settings tables."""

from __future__ import annotations

import re

from otel._internal.variables import VARIABLES
from services.common.config import FAIL_CLOSED, SETTINGS
from trading_otel_tools.cli.config_docs import BLOCKS, doc_path, render


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- generated: {name} ", 1)[1].split(f"<!-- end generated: {name} -->")[0]


def test_docs_configuration_md_is_generated_from_the_settings_tables() -> None:
    text = doc_path().read_text()
    assert render(text) == text, (
        "docs/configuration.md is stale: run `make docs` "
        "(python -m trading_otel_tools.cli.config_docs --update docs/configuration.md)"
    )


def test_every_library_variable_has_one_row() -> None:
    text = doc_path().read_text()
    rows = [
        line
        for name in ("settings-project", "settings-otel")
        for line in _block(text, name).splitlines()
    ]
    for v in VARIABLES:
        assert sum(line.startswith(f"| `{v.env}` |") for line in rows) == 1, v.env


def test_the_services_block_marks_exactly_the_fail_closed_settings() -> None:
    block = _block(doc_path().read_text(), "settings-services")
    closed = set(re.findall(r"^\| `(TRADING_OTEL_\w+)` \|.*\| \*\*closed\*\* \|$", block, re.M))
    assert closed == set(FAIL_CLOSED)
    assert {s.var for s in SETTINGS} <= set(re.findall(r"^\| `(TRADING_OTEL_\w+)`", block, re.M))


def test_every_block_renders_a_table() -> None:
    for name, block in BLOCKS.items():
        assert block().startswith("| variable | default |"), name
