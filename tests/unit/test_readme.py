"""The README stays true: its configuration table is the settings model, its test command is
what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from podscribe.settings import settings_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_configuration_table_matches_the_settings_model() -> None:
    match = re.search(
        r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", README, re.S
    )
    assert match, "README lost its settings-table markers"
    expected = settings_table()
    assert match.group(1) == expected, (
        "README configuration table is stale; replace it with:\n" + expected
    )


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make demo" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M)


def test_documents_linked_from_the_readme_exist() -> None:
    for link in re.findall(r"\]\(((?:docs|terraform|local_emulators)/[^)#]+)\)", README):
        assert (ROOT / link).exists(), f"README links to missing {link}"
