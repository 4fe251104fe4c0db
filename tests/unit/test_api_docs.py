"""docs/api.md stays true: every error code with its status, every variable it names."""

from __future__ import annotations

import re
from pathlib import Path

from podscribe.api.openapi import API_ERRORS
from podscribe.settings import Settings, env_name

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_error_code_is_documented_with_its_status() -> None:
    rows = set(re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", DOC, flags=re.MULTILINE))
    expected = {(str(error.http_status), error.code) for error in API_ERRORS}
    assert rows == expected


def test_every_variable_named_exists() -> None:
    known = {env_name(field) for field in Settings.model_fields}
    named = set(re.findall(r"`(PODSCRIBE_[A-Z_]+)`", DOC))
    assert named, "the document names its settings"
    assert named <= known, named - known
