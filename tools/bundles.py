"""Deploy bundles for the Cloud Functions: ``python -m tools.bundles`` (``nox -s bundles``).

A bundle is what Cloud Functions builds from: the function folder's ``main.py`` (and any
other module next to it), a pinned ``requirements.txt``, and the ``podscribe`` package copied
from ``src/``. Terraform uploads ``build/bundles/<name>.zip`` under a content-hash name, so a
bundle must be byte-for-byte reproducible: entries are sorted, every timestamp is 1980-01-01,
permissions are 0644, and ``__pycache__`` never gets in.

Why pins come from the lock: ``requirements.txt`` is the function's extra's lock file,
``requirements/<extra>.txt`` (``submit`` or ``dispatch``, written by ``make lock``), entry for
entry with its hashes, so pip on the Cloud Functions build server installs exactly the
artifacts PyPI holds for those versions (hash-checking mode: every dependency is pinned). That
file is compiled as a subset of the dev lock that ``make install`` puts in ``.venv``, so these
are the versions the tests ran against. The direct dependencies of the extra in
``pyproject.toml`` must be in the lock at versions they allow; a stale or missing lock is an
error ("run `make lock`"), never a guess.

Why the runtime is named: the lock is universal (every platform, Python 3.11 and 3.12), and
the bundle is installed by Cloud Functions' ``python311`` build on Linux x86_64, whatever Python
runs this tool. :data:`FUNCTION_RUNTIME` says so explicitly: entries whose environment marker
cannot hold there are left out (evaluated for that runtime, never for the host), and
``--check-runtime`` asks pip for exactly the wheels that build would install
(``pip download --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11``,
hash-checked), so a pin without a wheel for the runtime fails here rather than on Google's
build server.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools.lock import LOCK_COMMAND, LockedRequirement, LockError, read_lock

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_NAME = "podscribe"

# 1980-01-01 00:00:00 is the earliest time a zip entry can carry.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--
_SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
# .npz: the voice encoder's weights (5 MB) label speakers in the job only; no function loads them.
_SKIPPED_SUFFIXES = {".pyc", ".pyo", ".npz"}


class BundleError(RuntimeError):
    """A bundle cannot be built (missing function, extra or installed dependency)."""


@dataclass(frozen=True)
class FunctionRuntime:
    """The Python a Cloud Functions build installs a bundle's requirements with.

    Attributes:
        name: the Cloud Functions runtime (Terraform's ``runtime``), e.g. ``python311``.
        python_version: ``major.minor`` of its CPython.
        platform: the wheel platform tag its Linux x86_64 build accepts.
    """

    name: str
    python_version: str
    platform: str

    @property
    def abi(self) -> str:
        """The CPython ABI tag, e.g. ``cp311``."""
        return "cp" + self.python_version.replace(".", "")

    def may_need(self, marker: str | None) -> bool:
        """Whether an entry with this environment marker can apply on the runtime.

        Evaluated at the first and a late patch release of the runtime's Python, so a marker
        on the full version (``python_full_version < '3.11.3'``) keeps its entry and pip on
        the build server decides; a marker that holds at neither is never needed there.
        """
        if marker is None:
            return True
        parsed = Marker(marker)
        return any(parsed.evaluate(self._environment(patch)) for patch in ("0", "99"))

    def _environment(self, patch: str) -> dict[str, str]:
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python_version}.{patch}",
            "os_name": "posix",
            "platform_machine": "x86_64",
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.python_version}.{patch}",
            "python_version": self.python_version,
            "sys_platform": "linux",
        }

    def download_command(self, requirements: Path, destination: Path) -> list[str]:
        """``pip download`` of exactly the wheels this runtime's build would install."""
        return [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--require-hashes",
            "--platform", self.platform, "--python-version", self.python_version,
            "--implementation", "cp", "--abi", self.abi,
            "--dest", str(destination), "-r", str(requirements),
        ]  # fmt: skip


# Cloud Functions gen2 `python311` on Linux x86_64 (terraform/modules/functions: `runtime`).
FUNCTION_RUNTIME = FunctionRuntime("python311", "3.11", "manylinux2014_x86_64")


@dataclass(frozen=True)
class BundleSpec:
    """What goes into one bundle.

    Attributes:
        name: bundle name; the zip is ``<name>.zip``.
        function_dir: folder holding the function's ``main.py``.
        extra: the optional-dependency group of ``pyproject.toml`` the function needs.
    """

    name: str
    function_dir: Path
    extra: str


@dataclass(frozen=True)
class Bundle:
    """A built bundle.

    Attributes:
        name: bundle name.
        path: the zip file.
        sha256: hex digest of the zip (equal for equal inputs).
        requirements: the ``name==version`` pins of its ``requirements.txt`` (which also
            carries each pin's environment marker and hashes).
        files: the archive's entry names, in order.
    """

    name: str
    path: Path
    sha256: str
    requirements: tuple[str, ...]
    files: tuple[str, ...]


DEFAULT_SPECS = (
    BundleSpec("submit", REPO_ROOT / "functions" / "submit", "submit"),
    BundleSpec("dispatch", REPO_ROOT / "functions" / "dispatch", "dispatch"),
)


def project_requirements(pyproject: Path, extra: str) -> list[Requirement]:
    """The direct requirements of ``podscribe[extra]``, self-references expanded.

    Args:
        pyproject: the project's ``pyproject.toml``.
        extra: an optional-dependency group, e.g. ``submit``.

    Returns:
        Core dependencies plus those of the extra and of every podscribe extra it names.

    Raises:
        BundleError: the extra is not defined.
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    groups: dict[str, list[str]] = project.get("optional-dependencies", {})
    found: list[Requirement] = [Requirement(line) for line in project.get("dependencies", [])]
    pending, seen = [extra], set()
    while pending:
        group = pending.pop()
        if group in seen:
            continue
        if group not in groups:
            raise BundleError(f"pyproject.toml has no optional dependency group {group!r}")
        seen.add(group)
        for line in groups[group]:
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == PROJECT_NAME:
                pending.extend(sorted(requirement.extras))
            else:
                found.append(requirement)
    return found


def locked_requirements(
    requirements: Iterable[Requirement], lock_file: Path
) -> list[LockedRequirement]:
    """The entries of ``lock_file``, checked against the direct ``requirements``.

    Args:
        requirements: the extra's direct requirements (from :func:`project_requirements`).
        lock_file: its lock, ``requirements/<extra>.txt``.

    Returns:
        The lock's entries, sorted by name.

    Raises:
        BundleError: the lock is missing or malformed, or a direct requirement is not in it
            or locked at a version it does not allow (the lock is stale).
    """
    try:
        entries = read_lock(lock_file)
    except LockError as error:
        raise BundleError(str(error)) from None
    locked = {entry.name: entry.version for entry in entries}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in locked:
            raise BundleError(f"{requirement} is not in {lock_file.name}; run `{LOCK_COMMAND}`")
        if requirement.specifier and not requirement.specifier.contains(
            locked[name], prereleases=True
        ):
            raise BundleError(
                f"{lock_file.name} locks {name}=={locked[name]}, which does not satisfy "
                f"{requirement}; run `{LOCK_COMMAND}`"
            )
    return sorted(entries, key=lambda entry: entry.name)


def _function_files(function_dir: Path) -> list[tuple[str, Path]]:
    if not (function_dir / "main.py").is_file():
        raise BundleError(f"{function_dir / 'main.py'} does not exist")
    files = []
    for path in sorted(function_dir.rglob("*")):
        relative = path.relative_to(function_dir)
        if not path.is_file() or _skipped(relative):
            continue
        name = relative.name
        # Tests and hand-written requirements stay behind: the bundle gets generated pins.
        if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
            continue
        if name.startswith("requirements") and name.endswith(".txt"):
            continue
        files.append((relative.as_posix(), path))
    return files


def _package_files(package_dir: Path) -> list[tuple[str, Path]]:
    return [
        (f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path)
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and not _skipped(path.relative_to(package_dir))
    ]


def _skipped(relative: Path) -> bool:
    return bool(_SKIPPED_DIRS.intersection(relative.parts)) or relative.suffix in _SKIPPED_SUFFIXES


def write_reproducible_zip(destination: Path, entries: dict[str, bytes]) -> str:
    """Write ``entries`` to a zip whose bytes depend only on names and contents.

    Args:
        destination: the zip file to (over)write.
        entries: archive name -> content.

    Returns:
        The sha256 hex digest of the written file.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = _FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode bits are read back
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)
    partial.replace(destination)
    return hashlib.sha256(destination.read_bytes()).hexdigest()


def runtime_requirements(
    entries: Iterable[LockedRequirement], runtime: FunctionRuntime = FUNCTION_RUNTIME
) -> list[LockedRequirement]:
    """The lock entries the runtime may install: those whose marker can hold there."""
    return [entry for entry in entries if runtime.may_need(entry.marker)]


def build_bundle(
    spec: BundleSpec,
    out_dir: Path,
    *,
    repo_root: Path = REPO_ROOT,
    runtime: FunctionRuntime = FUNCTION_RUNTIME,
) -> Bundle:
    """Build one bundle.

    Args:
        spec: which function and extra.
        out_dir: where ``<name>.zip`` goes.
        repo_root: the repository (holds ``pyproject.toml`` and ``src/podscribe``).
        runtime: the Cloud Functions runtime that installs its requirements.

    Returns:
        The built bundle.

    Raises:
        BundleError: the function or the extra is missing, or its lock is missing or stale.
    """
    direct = project_requirements(repo_root / "pyproject.toml", spec.extra)
    locked = runtime_requirements(
        locked_requirements(direct, repo_root / "requirements" / f"{spec.extra}.txt"), runtime
    )
    requirements = [entry.pin for entry in locked]
    header = (
        f"# {spec.name}: podscribe[{spec.extra}] from requirements/{spec.extra}.txt, the lock\n"
        "# the tests ran against (every dependency pinned, with PyPI's hashes), for Cloud\n"
        f"# Functions' {runtime.name} (CPython {runtime.python_version}, {runtime.platform}).\n"
        "# Generated by `nox -s bundles` (tools/bundles.py); do not edit.\n"
    )
    entries = {name: path.read_bytes() for name, path in _function_files(spec.function_dir)}
    entries.update(
        (name, path.read_bytes()) for name, path in _package_files(repo_root / "src" / PROJECT_NAME)
    )
    entries["requirements.txt"] = (header + "".join(entry.render() for entry in locked)).encode()
    path = out_dir / f"{spec.name}.zip"
    digest = write_reproducible_zip(path, entries)
    return Bundle(spec.name, path, digest, tuple(requirements), tuple(sorted(entries)))


def build_all(
    out_dir: Path, specs: Sequence[BundleSpec] = DEFAULT_SPECS, *, repo_root: Path = REPO_ROOT
) -> list[Bundle]:
    """Build every bundle Terraform deploys.

    Args:
        out_dir: where the zips go (Terraform reads ``build/bundles`` by default).
        specs: the bundles to build.
        repo_root: the repository.

    Returns:
        The built bundles, in ``specs`` order.

    Raises:
        BundleError: one of them cannot be built.
    """
    return [build_bundle(spec, out_dir, repo_root=repo_root) for spec in specs]


def check_runtime_wheels(bundle: Bundle, runtime: FunctionRuntime = FUNCTION_RUNTIME) -> int:
    """Fetch the wheels ``runtime``'s build would install for ``bundle`` (needs the index).

    Args:
        bundle: a built bundle.
        runtime: the Cloud Functions runtime.

    Returns:
        How many wheels were fetched, each checked against the bundle's hashes.

    Raises:
        BundleError: a pin has no wheel for the runtime, or a hash does not match.
    """
    with tempfile.TemporaryDirectory(prefix=f"bundle-{bundle.name}-") as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(bundle.path) as archive:
            (root / "requirements.txt").write_bytes(archive.read("requirements.txt"))
        result = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
            runtime.download_command(root / "requirements.txt", root / "wheels"),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if result.returncode != 0:
            raise BundleError(
                f"{bundle.name}: no complete set of wheels for {runtime.name} "
                f"({runtime.platform}): {result.stderr.strip()[-1500:]}"
            )
        return len(list((root / "wheels").glob("*.whl")))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.bundles [--out DIR] [NAME ...]``: build and list the bundles."""
    parser = argparse.ArgumentParser(prog="python -m tools.bundles", description=__doc__)
    parser.add_argument("names", nargs="*", help="bundles to build (default: all)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "bundles")
    parser.add_argument(
        "--check-runtime",
        action="store_true",
        help=f"also fetch the wheels {FUNCTION_RUNTIME.name} would install (needs the index)",
    )
    args = parser.parse_args(argv)
    specs = [spec for spec in DEFAULT_SPECS if not args.names or spec.name in args.names]
    unknown = set(args.names) - {spec.name for spec in DEFAULT_SPECS}
    if unknown:
        parser.error(f"unknown bundle(s): {', '.join(sorted(unknown))}")
    try:
        bundles = build_all(args.out, specs)
        for bundle in bundles:
            print(
                f"{bundle.path}  sha256={bundle.sha256}  "
                f"{len(bundle.requirements)} pinned requirements, {len(bundle.files)} files"
            )
            if args.check_runtime:
                wheels = check_runtime_wheels(bundle)
                print(f"  {wheels} wheels for {FUNCTION_RUNTIME.name} fetched and hash-checked")
    except BundleError as error:
        print(f"bundles: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
