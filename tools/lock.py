"""The locked dependency set: ``python -m tools.lock`` (``make lock``) writes ``requirements/``.

One resolution, several install targets. ``requirements/dev.txt`` is compiled first from
``pyproject.toml``'s ``dev`` extra (which names every other extra, so it is the whole
closure); each other target is then compiled from its own extra *constrained by the dev
lock*, so a package shared by two targets has the same version in both. Every file pins each
distribution with ``==`` and carries the sha256 of every artifact PyPI holds for that
version, so ``pip install --require-hashes -r requirements/<target>.txt`` installs exactly
that set on any machine:

- ``dev.txt``: extra ``dev`` (every extra, the test and lint tools); ``make install``, CI.
- ``job.txt``: extra ``job``; ``vertex_job/Dockerfile``.
- ``submit.txt``: extra ``submit``; the submit bundle (``tools/bundles.py``).
- ``dispatch.txt``: extra ``dispatch``; the dispatch bundle.

The resolution is universal (``uv pip compile --universal``, lowest Python 3.11): one file
serves Linux and macOS, CPython 3.11 (CI, Cloud Functions' ``python311``) and 3.12 (the job
image's Ubuntu 24.04). ``--fork-strategy fewest`` keeps a single version of each package
across Python versions, so the job image runs the CTranslate2, PyAV and NumPy the tests ran.

The lock must be portable: uv runs with ``--no-config`` and only ``https://pypi.org/simple``
(no pip or uv configuration, no local indexes or find-links, no ``UV_*`` variables), and the
result is checked for local paths before this exits. Existing pins are kept unless they no
longer satisfy ``pyproject.toml``; ``--upgrade`` moves everything to the newest versions,
``--upgrade-package NAME`` just one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = REPO_ROOT / "requirements"
INDEX_URL = "https://pypi.org/simple"
PYTHON_VERSION = "3.11"
LOCK_COMMAND = "make lock"

# Install target -> the pyproject extra it is compiled from. dev comes first: the others are
# constrained by it.
TARGETS: dict[str, str] = {
    "dev": "dev",
    "job": "job",
    "submit": "submit",
    "dispatch": "dispatch",
}
BASE_TARGET = "dev"

# Never locked: no extra needs it, and a CUDA build is gigabytes.
FORBIDDEN = frozenset({"torch", "torchvision", "torchaudio"})

_LOCAL = re.compile(r"file:|(?:^|[\s=@])(?:/|\./|\.\./|~/)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


class LockError(RuntimeError):
    """A lock file cannot be read, or breaks a rule every lock file keeps."""


@dataclass(frozen=True)
class LockedRequirement:
    """One entry of a lock file.

    Attributes:
        name: canonical distribution name.
        version: the pinned version (the ``==`` operand).
        marker: the environment marker, or ``None``.
        hashes: ``sha256:<hex>`` of every allowed artifact.
        line: the entry as written, continuation lines joined, without comments.
    """

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]
    line: str

    @property
    def pin(self) -> str:
        """``name==version``."""
        return f"{self.name}=={self.version}"

    def render(self) -> str:
        """The entry in requirements-file form, one ``--hash`` per continuation line."""
        head = self.pin if self.marker is None else f"{self.pin} ; {self.marker}"
        return " \\\n    ".join([head, *(f"--hash={digest}" for digest in self.hashes)]) + "\n"


def lock_path(target: str, lock_dir: Path = LOCK_DIR) -> Path:
    """``requirements/<target>.txt``."""
    return lock_dir / f"{target}.txt"


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(first line number, content) of each entry: comments dropped, continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            yield start, full
    if pending.strip():
        yield start, pending.strip()


def parse_lock_text(text: str, source: str = "<lock>") -> list[LockedRequirement]:
    """The entries of a lock file, each checked: pinned ``==``, hashed, nothing local.

    Args:
        text: the file's content.
        source: a name for error messages.

    Returns:
        The entries in file order.

    Raises:
        LockError: an entry is not a plain pinned and hashed requirement (an option line such
            as ``--index-url`` or ``-e``, a URL or path, a range, no hash) or a distribution
            appears twice.
    """
    if "file:" in text:
        raise LockError(f"{source}: embeds a file: URL; regenerate it with `{LOCK_COMMAND}`")
    entries: list[LockedRequirement] = []
    seen: dict[str, int] = {}
    for number, line in _logical_lines(text):
        where = f"{source}:{number}"
        head, _, options = line.partition(" --")
        options = f"--{options}" if options else ""
        if head.startswith("-"):
            raise LockError(f"{where}: option lines do not belong in a lock file: {line[:80]}")
        leftover = _HASH.sub("", options).strip()
        if leftover:
            raise LockError(f"{where}: only --hash options are allowed, found {leftover[:80]!r}")
        hashes = tuple(_HASH.findall(options))
        try:
            requirement = Requirement(head)
        except InvalidRequirement as error:
            raise LockError(f"{where}: {error}") from None
        name = canonicalize_name(requirement.name)
        if requirement.url is not None or _LOCAL.search(head):
            raise LockError(f"{where}: {name} comes from a URL or path, not the index")
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
            raise LockError(f"{where}: {name} is not pinned with == ({requirement.specifier})")
        if not hashes:
            raise LockError(f"{where}: {name} has no --hash")
        if name in seen:
            raise LockError(f"{where}: {name} is locked twice (also line {seen[name]})")
        seen[name] = number
        marker = str(requirement.marker) if requirement.marker is not None else None
        entries.append(LockedRequirement(name, specifiers[0].version, marker, hashes, line))
    return entries


def read_lock(path: Path) -> list[LockedRequirement]:
    """Parse one lock file (see :func:`parse_lock_text`).

    Raises:
        LockError: the file is missing or breaks a rule.
    """
    if not path.is_file():
        raise LockError(f"{path} does not exist; run `{LOCK_COMMAND}`")
    try:
        source = str(path.relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    return parse_lock_text(path.read_text(encoding="utf-8"), source)


def find_uv() -> str:
    """The ``uv`` of this environment (a dev dependency), else the one on ``PATH``."""
    beside = Path(sys.executable).with_name("uv")
    if beside.is_file():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise LockError("uv is not installed: run `make install` (it is in the dev extra)")
    return found


def compile_command(
    target: str,
    *,
    uv: str = "uv",
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
) -> list[str]:
    """The ``uv pip compile`` command line that writes ``requirements/<target>.txt``.

    Paths are relative to the repository root (the command runs there), so nothing local
    ends up in the file's header or annotations.
    """
    command = [
        uv,
        "pip",
        "compile",
        "pyproject.toml",
        "--extra",
        TARGETS[target],
        "--output-file",
        f"requirements/{target}.txt",
        "--no-config",
        "--index-url",
        INDEX_URL,
        "--universal",
        "--python-version",
        PYTHON_VERSION,
        "--fork-strategy",
        "fewest",
        "--generate-hashes",
        "--custom-compile-command",
        LOCK_COMMAND,
    ]
    if target != BASE_TARGET:
        command += ["--constraint", f"requirements/{BASE_TARGET}.txt"]
    elif upgrade:
        command.append("--upgrade")
    if target == BASE_TARGET:
        for package in upgrade_packages:
            command += ["--upgrade-package", package]
    return command


def _clean_environment() -> dict[str, str]:
    """This process's environment without uv's or pip's own settings (indexes, find-links)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("UV_", "PIP_")) or name in {"UV_CACHE_DIR", "PIP_CACHE_DIR"}
    }


def check_locks(lock_dir: Path = LOCK_DIR) -> dict[str, list[LockedRequirement]]:
    """Read every target's lock and check them together.

    Returns:
        target -> entries.

    Raises:
        LockError: a file breaks a rule, locks a forbidden package, or a target disagrees
            with the dev lock about a version (or locks what the dev lock does not).
    """
    locks = {target: read_lock(lock_path(target, lock_dir)) for target in TARGETS}
    base = {entry.name: entry.version for entry in locks[BASE_TARGET]}
    for target, entries in locks.items():
        for entry in entries:
            if entry.name in FORBIDDEN:
                raise LockError(f"requirements/{target}.txt locks {entry.name}")
            if base.get(entry.name) != entry.version:
                raise LockError(
                    f"requirements/{target}.txt has {entry.pin}, requirements/{BASE_TARGET}.txt "
                    f"{base.get(entry.name, 'nothing')}: run `{LOCK_COMMAND}`"
                )
    return locks


def compile_locks(
    *, upgrade: bool = False, upgrade_packages: Sequence[str] = ()
) -> dict[str, list[LockedRequirement]]:
    """Write every target's lock with uv (dev first), then check them together.

    Raises:
        LockError: uv is missing or failed, or a written file breaks a rule.
    """
    uv = find_uv()
    LOCK_DIR.mkdir(exist_ok=True)
    for target, extra in TARGETS.items():  # dev first: the others are constrained by it
        command = compile_command(target, uv=uv, upgrade=upgrade, upgrade_packages=upgrade_packages)
        print(f"lock: requirements/{target}.txt (extra {extra})", flush=True)
        done = subprocess.run(  # noqa: S603  (uv with arguments built above)
            command,
            cwd=REPO_ROOT,
            env=_clean_environment(),
            stdout=subprocess.DEVNULL,  # uv echoes the file; its summary goes to stderr
            check=False,
        )
        if done.returncode != 0:
            raise LockError(f"uv pip compile failed for {target} (exit {done.returncode})")
    return check_locks()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.lock [--upgrade] [--upgrade-package NAME ...]``."""
    parser = argparse.ArgumentParser(prog="python -m tools.lock", description=__doc__)
    parser.add_argument("--upgrade", action="store_true", help="newest versions of everything")
    parser.add_argument(
        "--upgrade-package", action="append", default=[], metavar="NAME", help="newest NAME"
    )
    args = parser.parse_args(argv)
    try:
        locks = compile_locks(upgrade=args.upgrade, upgrade_packages=args.upgrade_package)
    except LockError as error:
        print(f"lock: {error}", file=sys.stderr)
        return 1
    for target, entries in locks.items():
        print(f"requirements/{target}.txt: {len(entries)} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
