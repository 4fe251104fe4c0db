"""What each drill observed, kept as one JSON file per drill under ``build/drills/``.

A drill records its figures before it asserts on them, so a failed drill still shows what
it saw; the outcome (passed or failed) is added by the hook in ``conftest.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT_DIR = ROOT / "build" / "drills"


@dataclass
class Figures:
    """One drill's row of the table.

    Attributes:
        drill: its name, as the table shows it.
        broken: what was broken, and how.
        observed: figure name -> value ("lost": 0, "p99 ms": 41.2, "RSS growth MB": 1.3).
        bound: the bound the figures were held to, in words.
        outcome: "passed" or "failed", set once the drill ended.
    """

    drill: str
    broken: str
    observed: dict[str, object] = field(default_factory=dict)
    bound: str = ""
    outcome: str = "running"

    def path(self, directory: Path = REPORT_DIR) -> Path:
        return directory / f"{re.sub(r'[^a-z0-9]+', '-', self.drill.lower()).strip('-')}.json"

    def save(self, directory: Path = REPORT_DIR) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = self.path(directory)
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Figures:
        return cls(**json.loads(path.read_text()))


class Recorder:
    """Hands out a drill's :class:`Figures`; the conftest hook saves them with the outcome."""

    def __init__(self) -> None:
        self.rows: list[Figures] = []

    def __call__(self, drill: str, broken: str, bound: str = "") -> Figures:
        row = Figures(drill=drill, broken=broken, bound=bound)
        self.rows.append(row)
        row.save()
        return row
