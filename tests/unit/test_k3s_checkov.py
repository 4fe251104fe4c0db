"""checkov's Kubernetes checks pass on the k3s manifests, through `nox -s checkov_k3s`.

The session renders the kustomization (what `kubectl apply -k` applies) and scans it with the
launcher's Job template, offline, from the checkov venv the `checkov` session keeps under
.nox/. Skips are `checkov.io/skipN` annotations on the objects, each with its reason
(tests/unit/test_k3s_manifests.py checks the reasons are there).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import missing_service

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_checkov_passes_on_the_k3s_manifests() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "--no-venv", "-s", "checkov_k3s"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=580,
        check=False,
    )
    output = result.stdout + result.stderr
    if "Could not find a version that satisfies the requirement checkov" in output:
        missing_service("checkov cannot be installed: the package index is unreachable")
    if "Program kubectl not found" in output:
        missing_service("kubectl (client only) renders the kustomization")
    summary = re.search(
        r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)", output
    )
    assert summary, output[-3000:]
    passed, failed, skipped = (int(group) for group in summary.groups())
    assert failed == 0, output[-5000:]
    assert passed > 500  # it really scanned every workload
    assert skipped > 0  # the annotations were read, so the reasons are where checkov looks
    assert result.returncode == 0, output[-3000:]
