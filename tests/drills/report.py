"""Print the drills' table from ``build/drills/*.json`` (``python -m tests.drills.report``).

The Markdown it prints is also written to ``build/drills/report.md``; with ``--write-docs``
it replaces the table between the ``<!-- drills-table -->`` markers of the README and
``docs/reliability.md``. Exits 1 when a drill failed or none ran.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.drills.figures import REPORT_DIR, ROOT, Figures

DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "reliability.md")
BEGIN, END = "<!-- drills-table -->", "<!-- /drills-table -->"


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


def write_docs(text: str, documents: tuple[Path, ...] = DOCUMENTS) -> None:
    """Put ``text`` between the markers of each document (which must have them)."""
    for document in documents:
        content = document.read_text()
        head, found, rest = content.partition(BEGIN)
        _, closed, tail = rest.partition(END)
        if not (found and closed):
            raise SystemExit(f"{document} has no {BEGIN} ... {END} markers")
        document.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def main(directory: Path = REPORT_DIR, *, docs: bool = False) -> int:
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
    if docs:
        write_docs(text)
    return 0 if all(row.outcome == "passed" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main(docs="--write-docs" in sys.argv[1:]))
