"""Real feeds, lookup answers and links from public repositories, with the answers expected.

They live in ``../shared/data/realworld/`` (sources in its ``manifest.json``, how the answers
were derived in its README) and are read there, never copied into the repository.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

REALWORLD = Path(__file__).resolve().parents[3] / "shared" / "data" / "realworld"


@functools.cache
def manifest() -> dict[str, Any]:
    """The manifest, or a clear failure: the data is part of the test set-up."""
    path = REALWORLD / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the real-world feeds and links are read from ../shared/data"
        )
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def read_bytes(relative: str) -> bytes:
    return (REALWORLD / relative).read_bytes()


def expected_items(feed: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((REALWORLD / feed["items_file"]).read_text("utf-8"))
    return items


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
