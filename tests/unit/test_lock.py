"""The lock stays honest: ``requirements/*.txt`` install the same set everywhere, from PyPI.

Offline: only the files are read. What is checked: every lock parses, every entry is pinned
with ``==`` and hashed, nothing points at a local path or an index, the dev lock (``make
install``, CI) agrees with the job image's and the bundles' locks on every shared package,
each extra's direct dependencies are in its lock at versions ``pyproject.toml`` allows, and
the installers (Makefile, bundles) read these files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tools.bundles import DEFAULT_SPECS, project_requirements
from tools.lock import (
    BASE_TARGET,
    FORBIDDEN,
    INDEX_URL,
    LOCK_DIR,
    TARGETS,
    LockedRequirement,
    LockError,
    check_locks,
    compile_command,
    lock_path,
    parse_lock_text,
    read_lock,
)

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
HASH = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def locks() -> dict[str, list[LockedRequirement]]:
    return {target: read_lock(lock_path(target)) for target in TARGETS}


def test_the_lock_folder_holds_exactly_the_targets() -> None:
    assert {path.stem for path in LOCK_DIR.glob("*.txt")} == set(TARGETS)
    assert next(iter(TARGETS)) == BASE_TARGET  # compiled first: it constrains the others


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_entry_is_pinned_and_hashed(
    target: str, locks: dict[str, list[LockedRequirement]]
) -> None:
    entries = locks[target]
    assert entries, target
    for entry in entries:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry.name), entry.name
        assert entry.line.startswith(f"{entry.name}=={entry.version}"), entry.line
        assert entry.hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in entry.hashes)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_nothing_local_and_no_index_in_the_file(target: str) -> None:
    text = lock_path(target).read_text(encoding="utf-8")
    local = ("file:", "/opt/", "/tmp/", "/home/", "/root/", "/work/")  # noqa: S108
    for needle in (*local, "http://", "https://"):
        assert needle not in text, f"requirements/{target}.txt contains {needle!r}"
    for line in text.splitlines():
        option = line.strip()
        if option.startswith("-"):
            assert option.startswith("--hash=sha256:"), line  # no -e, -i, --find-links, ...


def test_every_target_agrees_with_the_dev_lock(locks: dict[str, list[LockedRequirement]]) -> None:
    dev = {entry.name: entry.version for entry in locks[BASE_TARGET]}
    for target, entries in locks.items():
        for entry in entries:
            assert dev.get(entry.name) == entry.version, (target, entry.pin, dev.get(entry.name))
    assert set(check_locks()) == set(TARGETS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_extras_direct_dependencies_are_locked(
    target: str, locks: dict[str, list[LockedRequirement]]
) -> None:
    locked = {entry.name: entry.version for entry in locks[target]}
    for requirement in project_requirements(PYPROJECT, TARGETS[target]):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is missing from requirements/{target}.txt"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{target}.txt locks {name}=={locked[name]}, pyproject wants {requirement}"
        )
    assert "podscribe" not in locked  # the project installs from source, --no-deps


def test_no_forbidden_packages_and_the_job_stack_has_one_version_everywhere(
    locks: dict[str, list[LockedRequirement]],
) -> None:
    for target, entries in locks.items():
        assert not {entry.name for entry in entries} & FORBIDDEN, target
    # CI tests on CPython 3.11, the job image runs 3.12: the engine must be the same on both,
    # so these carry no environment marker that could select another version.
    job = {entry.name: entry for entry in locks["job"]}
    for name in ("faster-whisper", "ctranslate2", "av", "numpy", "tokenizers", "onnxruntime"):
        assert name in job and job[name].marker is None, (name, job.get(name))
    assert "faster-whisper" not in {entry.name for entry in locks["submit"]}
    assert "faster-whisper" not in {entry.name for entry in locks["dispatch"]}
    assert "uv" in {entry.name for entry in locks[BASE_TARGET]}  # `make lock` needs it


def test_the_parser_reads_markers_continuations_and_comments() -> None:
    text = (
        "# header\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        f"    --hash={HASH} \\\n"
        f"    --hash=sha256:{'1' * 64}\n"
        "    # via\n"
        "    #   -c requirements/dev.txt\n"
        f"Flask_Thing==3.1 --hash={HASH}\n"
    )
    first, second = parse_lock_text(text)
    assert (first.name, first.version, first.marker) == (
        "colorama",
        "0.4.6",
        'sys_platform == "win32"',
    )
    assert first.hashes == (HASH, f"sha256:{'1' * 64}")
    assert (second.name, second.pin) == ("flask-thing", "flask-thing==3.1")
    [again] = parse_lock_text(first.render())  # what the bundles write reads back the same
    assert (again.pin, again.marker, again.hashes) == (first.pin, first.marker, first.hashes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"httpx>=0.27 --hash={HASH}\n", "not pinned"),
        (f"httpx==0.28.* --hash={HASH}\n", "not pinned"),
        ("httpx==0.28.1\n", "no --hash"),
        (f"--index-url https://example.org/simple\nhttpx==0.28.1 --hash={HASH}\n", "option"),
        (f"--find-links /opt/wheels\nhttpx==0.28.1 --hash={HASH}\n", "option"),
        ("-e .\n", "option"),
        (f"httpx @ file:///opt/wheels/httpx.whl --hash={HASH}\n", "file:"),
        (f"httpx @ https://example.org/httpx.whl --hash={HASH}\n", "URL"),
        (f"httpx==0.28.1 --hash={HASH} --no-binary httpx\n", "only --hash"),
        (f"httpx==0.28.1 --hash={HASH}\nHTTPX==0.28.1 --hash={HASH}\n", "twice"),
    ],
)
def test_the_parser_refuses_what_a_lock_must_not_hold(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        parse_lock_text(text)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_lock_command_ignores_local_configuration(target: str) -> None:
    command = compile_command(target, uv="uv", upgrade=True)
    assert command[:4] == ["uv", "pip", "compile", "pyproject.toml"]
    assert command[command.index("--extra") + 1] == TARGETS[target]
    assert command[command.index("--index-url") + 1] == INDEX_URL == "https://pypi.org/simple"
    for flag in ("--no-config", "--generate-hashes", "--universal"):
        assert flag in command
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--output-file") + 1] == f"requirements/{target}.txt"
    if target == BASE_TARGET:
        assert "--constraint" not in command
    else:
        assert command[command.index("--constraint") + 1] == f"requirements/{BASE_TARGET}.txt"
    assert not [arg for arg in command if arg.startswith(("file:", "/"))]


def test_make_installs_from_the_dev_lock_and_make_lock_rewrites_it() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    rule = re.search(r"^\$\(VENV\)/\.installed:(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert rule, "the install rule is gone"
    prerequisites, recipe = rule.group(1).split(), rule.group(2)
    assert "requirements/dev.txt" in prerequisites and "pyproject.toml" in prerequisites
    assert "pip install --quiet --require-hashes -r requirements/dev.txt" in recipe
    assert "pip install --quiet --no-deps -e ." in recipe
    assert ".[dev]" not in recipe
    lock = re.search(r"^lock:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert lock and "-m tools.lock" in lock.group(1)


def test_the_bundles_have_a_lock_each() -> None:
    for spec in DEFAULT_SPECS:
        assert spec.extra in TARGETS, spec
