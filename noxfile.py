"""Sessions: lint, tests, drills, bench, bundles, checkov (checkov_k3s: only the k3s manifests).

`make test` runs ``nox --no-venv -s lint tests drills`` inside the project's virtual environment:
one environment keeps CI fast (faster-whisper and the Google libraries install once).
checkov is the exception: it pins old versions of shared libraries, so it gets a venv of
its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests", "drills"]
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
    """ruff (lint + format check) and mypy (strict; tests may leave defs unannotated)."""
    session.run(sys.executable, "-m", "ruff", "check", *LINTED)
    session.run(sys.executable, "-m", "ruff", "format", "--check", *LINTED)
    typed = [
        path
        for path in ("src", "vertex_job", "local_emulators", "tools", "tests", "benchmarks")
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


DRILLS_DIR = Path("tests") / "drills"
SOAK = DRILLS_DIR / "test_soak.py"
DRILL_REPORTS = Path("build") / "drills"


@nox.session(venv_backend="none")
def drills(session: nox.Session) -> None:
    """Faults broken for real (tests/drills), then the table of what each drill observed.

    The soak (ten minutes of polling clients, mostly waiting) runs beside the other drills in
    a pytest of its own, so the session lasts about as long as the soak. Arguments go to the
    other drills' pytest (``nox -s drills -- -k redis``); ``--no-soak`` leaves the soak out.
    """
    args = list(session.posargs)
    with_soak = "--no-soak" not in args
    args = [arg for arg in args if arg != "--no-soak"]
    shutil.rmtree(DRILL_REPORTS, ignore_errors=True)
    DRILL_REPORTS.mkdir(parents=True)
    soak = None
    soak_log = DRILL_REPORTS / "soak.log"
    if with_soak:
        with soak_log.open("wb") as log:
            soak = subprocess.Popen(
                [sys.executable, "-m", "pytest", "--drills", "-p", "no:cacheprovider", str(SOAK)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    try:
        # Not session.run: its result does not tell a failed pytest from a passed one.
        others = subprocess.call(
            [sys.executable, "-m", "pytest", "--drills", str(DRILLS_DIR), f"--ignore={SOAK}", *args]
        )
    finally:
        soak_code = soak.wait() if soak is not None else 0
    if soak is not None:
        session.log(f"the soak's pytest ({soak_log}):\n{soak_log.read_text()[-6000:]}")
    session.run(sys.executable, "-m", "tests.drills.report", success_codes=[0, 1])
    if others != 0 or soak_code != 0:
        session.error(f"drills failed (pytest exit {others}, soak {soak_code}); see the table")


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
CHECKOV_OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
K3S_DIR = Path("local_emulators") / "k3s"


@nox.session(venv_backend="none")
def checkov(session: nox.Session) -> None:
    """checkov over terraform/ and the k3s manifests, offline, from a venv of its own.

    checkov pins old versions of libraries the project shares (and `make` runs nox with
    --no-venv), so this session makes its own venv under .nox/ instead of relying on nox's.
    Installing it needs the package index once; scanning never goes online: no guideline or
    policy download (--skip-download, BC_SKIP_MAPPING) and no update check.
    """
    checkov_bin = _ensure_checkov(session)
    session.run(
        checkov_bin,
        "--directory",
        "terraform",
        "--framework",
        "terraform",
        "--skip-download",
        "--compact",
        "--quiet",
        *session.posargs,
        env=CHECKOV_OFFLINE,
    )
    _scan_k3s(session, checkov_bin)


def _ensure_checkov(session: nox.Session) -> str:
    """checkov in its own venv under .nox/ (the index is needed once); returns its path."""
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
    return str(CHECKOV_VENV / "bin" / "checkov")


def _scan_k3s(session: nox.Session, checkov_bin: str) -> None:
    """checkov's Kubernetes checks over what `kubectl apply -k local_emulators/k3s` applies.

    The kustomization is rendered first (namespace, generated ConfigMaps), then scanned with
    the Job template the launcher fills in; skips are `checkov.io/skipN` annotations.
    """
    rendered = session.run("kubectl", "kustomize", str(K3S_DIR), external=True, silent=True)
    output = Path("build") / "k3s" / "rendered.yaml"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(str(rendered), encoding="utf-8")
    session.run(
        checkov_bin,
        "--file",
        str(output),
        "--file",
        str(K3S_DIR / "job-template.yaml"),
        "--framework",
        "kubernetes",
        "--skip-download",
        "--compact",
        "--quiet",
        env=CHECKOV_OFFLINE,
    )


@nox.session(venv_backend="none")
def checkov_k3s(session: nox.Session) -> None:
    """checkov over the k3s manifests only (`checkov` runs this after terraform/)."""
    _scan_k3s(session, _ensure_checkov(session))
