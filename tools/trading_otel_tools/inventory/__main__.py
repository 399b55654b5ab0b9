"""``make inventory``: run the fault matrix on the real stack and re-record the inventory.

python -m trading_otel_tools.inventory            # run, print results, write the fixture
python -m trading_otel_tools.inventory --dry-run  # run and print, write nothing
python -m trading_otel_tools.inventory --docs     # regenerate the matrix table in the docs
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from trading_otel_tools import home
from trading_otel_tools.inventory import matrix
from trading_otel_tools.inventory.model import Inventory, diff
from trading_otel_tools.inventory.run import MatrixResult, matrix_environment, run_matrix

BEGIN = "<!-- generated: fault-matrix (do not edit; make docs) -->"
END = "<!-- end generated: fault-matrix -->"


def render_doc(text: str) -> str:
    """``text`` with the fault-matrix block replaced by the current table.

    Raises:
        ValueError: the markers are missing.
    """
    if BEGIN not in text or END not in text:
        raise ValueError(f"docs/alerting.md lacks the fault-matrix markers {BEGIN!r} ... {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{matrix.markdown()}{END}{tail}"


def summary(result: MatrixResult) -> str:
    """One line per alert: baseline, time to fire, delivery."""
    lines = [f"{'alert':<26} {'step':<26} {'baseline':>8} {'fired':>7} {'archive':>8}  delivery"]
    for name, o in sorted(result.outcomes.items(), key=lambda kv: kv[1].step):
        fired = f"{o.fired_after_s:.0f}s" if o.fired_after_s is not None else "-"
        archived = f"{o.archived_after_s:.0f}s" if o.archived_after_s is not None else "-"
        state = "ok" if o.ok else f"FAIL {o.error}"
        lines.append(f"{name:<26} {o.step:<26} {o.baseline_series:>8} {fired:>7} "
                     f"{archived:>8}  {o.delivery} {state}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trading_otel_tools.inventory")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true", help="write nothing")
    parser.add_argument("--docs", action="store_true", help="only regenerate docs/alerting.md")
    args = parser.parse_args(argv)
    paths = home.checkout()
    args.out = args.out or paths.inventory
    if args.docs:
        doc = paths.alerting_doc
        doc.write_text(render_doc(doc.read_text()))
        print(f"wrote the fault matrix into {doc}")
        return 0

    def say(line: str) -> None:
        print(line, flush=True)

    # Under var/ (not a private temp dir): Postgres runs as its own user and must reach it.
    root = paths.var / "matrix"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    say(f"matrix: working under {root} (logs stay there after the run)")
    with matrix_environment(root, say, install=True) as env:
        result = run_matrix(env, say)
    print(summary(result))
    if args.out.is_file():
        changes = diff(Inventory.load(args.out), result.inventory)
        print(f"{len(changes)} change(s) against {args.out}:")
        for change in changes:
            print(f"  {change}")
    if not args.dry_run:
        result.inventory.save(args.out)
        print(f"wrote {args.out}")
    return 0 if all(o.ok for o in result.outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
