"""Sessions: lint, tests, bench, bundles, checkov.

`make test` runs ``nox --no-venv -s lint tests`` inside the project's virtual environment:
one environment keeps CI fast (faster-whisper and the Google libraries install once).
checkov is the exception: it pins old versions of shared libraries, so it gets a venv of
its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

LINTED = [
    "src",
    "functions",
    "vertex_job",
    "local_emulators",
    "tools",
    "tests",
    "benchmarks",
    "noxfile.py",
]
LINTED = [path for path in LINTED if Path(path).exists()]


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy (strict on src/)."""
    session.run(sys.executable, "-m", "ruff", "check", *LINTED)
    session.run(sys.executable, "-m", "ruff", "format", "--check", *LINTED)
    typed = [
        path
        for path in ("src", "vertex_job", "local_emulators", "tools")
        if any(Path(path).rglob("*.py"))
    ]
    session.run(sys.executable, "-m", "mypy", *typed)
    # Each function is its own deploy root with a module named `main`: one mypy run each.
    for function in sorted(Path("functions").glob("*/main.py")):
        session.run(sys.executable, "-m", "mypy", str(function))


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The whole suite: unit and integration, against real services."""
    session.run(sys.executable, "-m", "pytest", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Benchmarks that print figures (never timed tests)."""
    session.run(sys.executable, "-m", "benchmarks", *session.posargs)


@nox.session(venv_backend="none")
def bundles(session: nox.Session) -> None:
    """Deploy bundles for Terraform: build/bundles/{submit,dispatch}.zip (tools/bundles.py)."""
    session.run(sys.executable, "-m", "tools.bundles", *session.posargs)


CHECKOV_VERSION = "3.2.533"
CHECKOV_VENV = Path(".nox") / "checkov-venv"


@nox.session(venv_backend="none")
def checkov(session: nox.Session) -> None:
    """checkov over terraform/, offline, from a venv of its own.

    checkov pins old versions of libraries the project shares (and `make` runs nox with
    --no-venv), so this session makes its own venv under .nox/ instead of relying on nox's.
    Installing it needs the package index once; scanning never goes online: no guideline or
    policy download (--skip-download, BC_SKIP_MAPPING) and no update check.
    """
    python = CHECKOV_VENV / "bin" / "python"
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(CHECKOV_VENV))
    session.run(
        str(python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        f"checkov=={CHECKOV_VERSION}",
    )
    session.run(
        str(CHECKOV_VENV / "bin" / "checkov"),
        "--directory",
        "terraform",
        "--framework",
        "terraform",
        "--skip-download",
        "--compact",
        "--quiet",
        *session.posargs,
        env={"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
