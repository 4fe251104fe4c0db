"""The README stays true: its configuration table is the settings model, its test command is
what CI runs."""

from __future__ import annotations

import ast
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
    for link in re.findall(r"\]\(((?:docs|terraform|local_emulators)/[^)#]+|[A-Z]+\.md)\)", README):
        assert (ROOT / link).exists(), f"README links to missing {link}"


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_proof_security_md_names_is_a_real_test() -> None:
    """Each ``tests/...py::test_x`` (or ``::test_x`` after one) in a "Proved by" cell exists."""
    security = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    cited: list[tuple[str, str | None]] = []
    for row in security.splitlines():
        cells = row.split("|")
        if not row.startswith("| ") or len(cells) < 5 or set(cells[1].strip()) <= {"-"}:
            continue
        current = None
        for token in re.findall(r"`([^`]+)`", cells[-2]):
            spelled = re.fullmatch(r"(tests/[\w/]+\.py)(?:::(\w+))?|::(\w+)", token)
            if spelled is None:
                continue
            current = spelled[1] or current
            assert current, f"SECURITY.md cites {token} before naming its file"
            cited.append((current, spelled[2] or spelled[3]))
    assert len(cited) > 40, "SECURITY.md lost its Proved-by cells"
    for file, name in cited:
        assert (ROOT / file).is_file(), f"SECURITY.md cites missing {file}"
        if name is not None:
            assert name in _test_functions(ROOT / file), f"SECURITY.md cites missing {file}::{name}"


def test_every_module_security_md_names_exists() -> None:
    security = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    modules = re.findall(r"`(podscribe/[\w/]*\.py|podscribe/[\w/]+/)`", security)
    assert len(modules) > 10, "SECURITY.md lost its module references"
    for module in modules:
        assert (ROOT / "src" / module).exists(), f"SECURITY.md names missing src/{module}"
