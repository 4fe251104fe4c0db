"""Rewrite the README's configuration table from the settings model.

Run after adding a setting: ``.venv/bin/python scripts/update_readme_table.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from podscribe.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"

text = README.read_text(encoding="utf-8")
updated = re.sub(
    r"(<!-- settings-table:start -->\n).*?(\n<!-- settings-table:end -->)",
    lambda match: match.group(1) + settings_table() + match.group(2),
    text,
    flags=re.S,
)
README.write_text(updated, encoding="utf-8")
print("README configuration table updated" if updated != text else "README already up to date")
