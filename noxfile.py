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

LINTED = ["src", "functions", "vertex_job", "local_emulators", "tests", "benchmarks", "noxfile.py"]
LINTED = [path for path in LINTED if Path(path).exists()]


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy (strict on src/)."""
    session.run(sys.executable, "-m", "ruff", "check", *LINTED)
    session.run(sys.executable, "-m", "ruff", "format", "--check", *LINTED)
    typed = [path for path in ("src", "functions", "vertex_job", "local_emulators")
             if any(Path(path).rglob("*.py"))]
    session.run(sys.executable, "-m", "mypy", *typed)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The whole suite: unit and integration, against real services."""
    session.run(sys.executable, "-m", "pytest", *session.posargs)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Benchmarks that print figures (never timed tests)."""
    session.run(sys.executable, "-m", "benchmarks", *session.posargs)
