"""The variable tables of ``docs/configuration.md``, generated from the settings tables.

The library's variables come from :data:`otel._internal.settings.VARIABLES`, the
services' from :data:`services.common.config.SETTINGS` (this is tooling: it may import
both; ``otel`` itself never imports ``services``). The prose around the tables is
hand-written; each table sits between marker comments and ``make docs`` rewrites it::

    python -m trading_otel_tools.cli.config_docs --update docs/configuration.md

``tests/unit/test_config_docs.py`` fails when the committed page is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path

from otel._internal.variables import ON_BAD, VARIABLES, EnvVar
from services.common.auth import CLIENT_KEY_VAR, KEYS_VAR, MIN_KEY_LENGTH
from services.common.config import EX_CONFIG, FAIL_CLOSED, SETTINGS, ServiceSettings, Setting
from trading_otel_tools import home


def doc_path() -> Path:
    """docs/configuration.md in the checkout (see :mod:`trading_otel_tools.home`)."""
    return home.path("docs", "configuration.md")


PROJECT_PREFIX = "TRADING_OTEL_"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _num(x: float) -> str:
    """A number as written in a variable: ``5000000``, ``0.2``, never ``5e+06``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _value(value: object, unit: str = "") -> str:
    """A default as the docs show it."""
    if value is None or value == {}:
        return "—"
    if isinstance(value, bool):
        shown = f"`{str(value).lower()}`"
    elif isinstance(value, int | float):
        shown = f"`{_num(value)}`"
    elif isinstance(value, tuple | frozenset):
        shown = f"`{','.join(value)}`" if value else "(empty)"
    else:
        shown = f"`{value}`"
    return f"{shown} {unit}" if unit and shown.startswith("`") else shown


def _lib_default(v: EnvVar) -> str:
    if v.shown is not None:
        return v.shown
    default = v.default.lower() if v.kind == "choice" else v.default
    return _value(default, v.unit)


def _lib_bad(v: EnvVar) -> str:
    template = v.bad if v.bad is not None else ON_BAD[v.kind]
    return template.format(low=_num(v.low), high=_num(v.high), default=_lib_default(v))


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fails(fail_open: bool) -> str:
    return "open" if fail_open else "**closed**"


def library_table(project: bool) -> str:
    """The library's ``TRADING_OTEL_*`` (``project``) or ``OTEL_*`` variables."""
    rows = [
        (
            f"`{v.env}`",
            _lib_default(v),
            v.meaning,
            _lib_bad(v),
            _fails(v.fail_open),
        )
        for v in VARIABLES
        if v.env.startswith(PROJECT_PREFIX) == project
    ]
    return _table(("variable", "default", "meaning", "bad value", "fails"), rows)


def _unit(field: str) -> str:
    return next((u for u in ("ms", "s") if field.endswith(f"_{u}")), "")


def _takes_anything(setting: Setting) -> bool:
    # A parser that takes even the empty string (the text and URL ones) rejects nothing.
    try:
        setting.parse("")
    except ValueError:
        return False
    return True


def services_table() -> str:
    """The services' variables: the risk and limit ones fail closed."""
    defaults = {f.name: f.default for f in fields(ServiceSettings)}
    refused = f"the service refuses to start (exit {EX_CONFIG}), naming the variable and the value"

    def bad(s: Setting) -> str:
        if s.fail_closed:
            return refused
        return "(any value accepted)" if _takes_anything(s) else "warning, the default"

    rows = [
        (
            f"`{s.var}`",
            _value(defaults[s.field], _unit(s.field)),
            s.expected,
            bad(s),
            _fails(not s.fail_closed),
        )
        for s in SETTINGS
    ]
    rows.append(
        (
            f"`{KEYS_VAR}`",
            "unset (authentication off)",
            f"comma-separated keys of {MIN_KEY_LENGTH}+ printable ASCII characters",
            f"{refused} (and the key's position, never the key)",
            _fails(KEYS_VAR not in FAIL_CLOSED),
        )
    )
    rows.append(
        (
            f"`{CLIENT_KEY_VAR}`",
            f"the first of `{KEYS_VAR}`",
            "the key a client sends to the gateway",
            "(any value accepted)",
            _fails(CLIENT_KEY_VAR not in FAIL_CLOSED),
        )
    )
    return _table(("variable", "default", "good value", "bad value", "fails"), rows)


#: Each generated block: its marker name and what renders it.
BLOCKS: dict[str, Callable[[], str]] = {
    "settings-project": lambda: library_table(project=True),
    "settings-otel": lambda: library_table(project=False),
    "settings-services": services_table,
}


def _markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- generated: {name} (do not edit; make docs) -->",
        f"<!-- end generated: {name} -->",
    )


def render(text: str) -> str:
    """``text`` with every generated block replaced by the current table.

    Raises:
        ValueError: a block's markers are missing.
    """
    for name, block in BLOCKS.items():
        begin, end = _markers(name)
        start, stop = text.find(begin), text.find(end)
        if start < 0 or stop < start:
            raise ValueError(f"the markers {begin!r} ... {end!r} are missing")
        text = text[: start + len(begin)] + "\n" + block() + text[stop:]
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trading_otel_tools.cli.config_docs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--update", type=Path, metavar="DOC", help="rewrite the blocks in DOC")
    args = parser.parse_args(argv)
    if args.update is None:
        for name, block in BLOCKS.items():
            print(f"## {name}\n\n{block()}")
        return 0
    doc: Path = args.update
    doc.write_text(render(doc.read_text()))
    print(f"wrote the settings tables into {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
