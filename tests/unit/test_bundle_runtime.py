"""Deploy bundles are pinned for Cloud Functions' runtime, not for the Python building them.

The lock is universal; the bundle's ``requirements.txt`` keeps what CPython 3.11 on Linux
x86_64 may install, decided by evaluating each marker for that runtime. The same lock gives
the same bundle under any interpreter, and Terraform deploys the runtime the bundle is for.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from tools.bundles import FUNCTION_RUNTIME, FunctionRuntime, runtime_requirements
from tools.lock import parse_lock_text
from tools.terraform_docs import TERRAFORM_DIR, load_module, named_blocks

HASH = "--hash=sha256:" + "0" * 64
LOCK = "\n".join(
    f"{line} \\\n    {HASH}"
    for line in (
        "plain==1.0",
        "only-old-patches==1.0 ; python_full_version < '3.11.3'",
        "only-3-12==1.0 ; python_version >= '3.12'",
        "only-mac==1.0 ; sys_platform == 'darwin'",
        "only-windows==1.0 ; platform_system == 'Windows'",
        "not-pypy==1.0 ; platform_python_implementation != 'PyPy'",
        "only-arm==1.0 ; platform_machine == 'aarch64'",
    )
)


def test_entries_are_kept_by_the_runtimes_markers_not_the_hosts() -> None:
    kept = [entry.name for entry in runtime_requirements(parse_lock_text(LOCK))]
    # A full-version marker may hold on some 3.11 patch release: pip on the build decides.
    assert kept == ["plain", "only-old-patches", "not-pypy"]
    python_312 = FunctionRuntime("python312", "3.12", "manylinux2014_x86_64")
    assert [e.name for e in runtime_requirements(parse_lock_text(LOCK), python_312)] == [
        "plain",
        "only-3-12",
        "not-pypy",
    ]


def test_pip_is_asked_for_the_runtimes_wheels_only(tmp_path: Path) -> None:
    command = FUNCTION_RUNTIME.download_command(tmp_path / "r.txt", tmp_path / "w")
    pairs = dict(itertools.pairwise(command))
    assert pairs["--platform"] == "manylinux2014_x86_64"
    assert pairs["--python-version"] == "3.11"
    assert pairs["--implementation"] == "cp" and pairs["--abi"] == "cp311"
    assert "--only-binary=:all:" in command and "--require-hashes" in command
    assert "--no-deps" in command  # the lock is the closure; nothing is resolved afresh


def test_terraform_deploys_the_runtime_the_bundles_are_for() -> None:
    variables = named_blocks(load_module(TERRAFORM_DIR / "modules" / "functions"), "variable")
    assert variables["runtime"]["default"] == FUNCTION_RUNTIME.name
    assert re.fullmatch(r"python3\d+", FUNCTION_RUNTIME.name)
    assert FUNCTION_RUNTIME.name == "python" + FUNCTION_RUNTIME.python_version.replace(".", "")
