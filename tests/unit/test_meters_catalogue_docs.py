"""``trading-otel metrics list`` and the generated docs/metrics.md."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from otel._internal.catalogue import CATALOGUE
from trading_otel_tools.cli import app
from trading_otel_tools.cli.metrics import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
runner = CliRunner()


def test_docs_metrics_md_is_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/metrics.md is stale: run `make docs` "
        "(trading-otel metrics list --markdown > docs/metrics.md)"
    )


def test_markdown_lists_every_metric_and_its_labels() -> None:
    text = render_markdown()
    for spec in CATALOGUE:
        assert f"| `{spec.prom_name}` |" in text
        for name in spec.attribute_names:
            assert f"| `{spec.prom_name}` | `{name}` |" in text


def test_list_json() -> None:
    result = runner.invoke(app, ["metrics", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == [s.prom_name for s in CATALOGUE]
    latency = rows[0]
    assert latency["type"] == "histogram" and latency["unit"] == "s"
    assert latency["labels"]["side"] == ["buy", "sell"] and latency["labels"]["symbol"] == "symbol"
    assert latency["buckets"][0] == 0.001 and latency["exemplars"] is True


def test_list_table_and_markdown() -> None:
    table = runner.invoke(app, ["metrics", "list"], terminal_width=200)
    assert table.exit_code == 0, table.output
    for spec in CATALOGUE:
        assert spec.prom_name in table.output
    md = runner.invoke(app, ["metrics", "list", "--markdown"])
    assert md.exit_code == 0 and md.output == render_markdown()


def test_json_and_markdown_together_is_a_usage_error() -> None:
    result = runner.invoke(app, ["metrics", "list", "--json", "--markdown"])
    assert result.exit_code == 2
