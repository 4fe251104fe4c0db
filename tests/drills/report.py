"""Print the drills' table from ``build/drills/*.json`` (``python -m tests.drills.report``).

The Markdown it prints (also written to ``build/drills/report.md``) is what the README's and
``docs/reliability.md``'s tables are copied from. Exits 1 when a drill failed or none ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.drills.figures import REPORT_DIR, Figures


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(rows: list[Figures]) -> str:
    lines = [
        "| Drill | What was broken | Observed | Bound | Result |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        observed = ", ".join(f"{name} {_value(value)}" for name, value in row.observed.items())
        lines.append(
            f"| {row.drill} | {row.broken} | {observed or '-'} | {row.bound or '-'} "
            f"| {row.outcome} |"
        )
    return "\n".join(lines) + "\n"


def main(directory: Path = REPORT_DIR) -> int:
    rows = sorted(
        (Figures.load(path) for path in directory.glob("*.json")), key=lambda row: row.drill
    )
    text = table(rows)
    (directory / "report.md").parent.mkdir(parents=True, exist_ok=True)
    (directory / "report.md").write_text(text)
    print(text)
    if not rows:
        print("no drill recorded any figures", file=sys.stderr)
        return 1
    return 0 if all(row.outcome == "passed" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
