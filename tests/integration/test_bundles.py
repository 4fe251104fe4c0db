"""The deploy bundles `nox -s bundles` builds: reproducible, and importable on their own.

The import test is what Cloud Functions does with a bundle: a fresh virtual environment, only
the bundle's ``requirements.txt`` installed (from the package index, through pip's cache),
then functions-framework loads ``main.py`` and looks up the target. It runs with an empty
environment, so a module that connects or reads credentials at import time fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.services import missing_service
from tools.bundles import (
    DEFAULT_SPECS,
    FUNCTION_RUNTIME,
    BundleError,
    BundleSpec,
    build_all,
    build_bundle,
    check_runtime_wheels,
)

# target -> signature type, per bundle (the dispatch bundle also serves the sweep function).
TARGETS = {
    "submit": {"submit": "http"},
    "dispatch": {"dispatch": "cloudevent", "sweep": "cloudevent"},
}

_IMPORT_PROBE = """
import json, sys
import functions_framework
import podscribe
from functions_framework import _function_registry

loaded = {}
for target, expected in json.loads(sys.argv[1]).items():
    app = functions_framework.create_app(target=target, source="main.py")
    kind = _function_registry.get_func_signature_type(target, None)
    function = _function_registry.get_user_function("main.py", sys.modules["main"], target)
    loaded[target] = {"signature": kind, "callable": callable(function), "app": type(app).__name__}
print(json.dumps({"podscribe": podscribe.__file__, "targets": loaded}))
"""


def _fake_function(root: Path) -> BundleSpec:
    function_dir = root / "functions" / "fake"
    (function_dir / "__pycache__").mkdir(parents=True)
    (function_dir / "main.py").write_text("def fake(request):\n    return 'ok'\n")
    (function_dir / "helpers.py").write_text("VALUE = 1\n")
    (function_dir / "main_test.py").write_text("def test_nothing():\n    pass\n")
    (function_dir / "requirements.txt").write_text("left-behind==1\n")
    (function_dir / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    return BundleSpec("fake", function_dir, "submit")


def test_bundles_are_byte_for_byte_reproducible(tmp_path: Path) -> None:
    spec = _fake_function(tmp_path)
    first = build_bundle(spec, tmp_path / "one")
    os.utime(spec.function_dir / "main.py", (0, 0))  # a different mtime must not matter
    second = build_bundle(spec, tmp_path / "two")

    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.sha256 == second.sha256
    with zipfile.ZipFile(first.path) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 for info in infos} == {0o100644}
        requirements = archive.read("requirements.txt").decode()
    assert "main.py" in names and "helpers.py" in names
    assert "podscribe/__init__.py" in names and "podscribe/py.typed" in names
    assert any(name.startswith("podscribe/migrations/") for name in names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert "main_test.py" not in names
    assert "left-behind" not in requirements


def test_requirements_pin_the_extras_closure_to_installed_versions(tmp_path: Path) -> None:
    bundle = build_bundle(_fake_function(tmp_path), tmp_path / "out")
    pins = dict(line.split("==") for line in bundle.requirements)

    # Direct dependencies of podscribe[submit], its nested extras, and their dependencies.
    for name in ("functions-framework", "pydantic", "sqlalchemy", "httpx", "redis", "flask"):
        assert name in pins, name
    assert "cloud-sql-python-connector" in pins  # via podscribe[cloudsql]
    assert "podscribe" not in pins  # the package travels as source inside the bundle
    assert pins["pydantic"] == metadata.version("pydantic")
    assert "faster-whisper" not in pins  # the job's dependencies stay out of the functions


def test_a_missing_function_is_reported(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"main\.py"):
        build_bundle(BundleSpec("gone", tmp_path / "nowhere", "submit"), tmp_path)


def test_an_unknown_extra_is_reported(tmp_path: Path) -> None:
    spec = _fake_function(tmp_path)
    with pytest.raises(BundleError, match="no optional dependency group"):
        build_bundle(BundleSpec("fake", spec.function_dir, "no-such-extra"), tmp_path)


_UNREACHABLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


def _runtime_python() -> str:
    """A CPython of Cloud Functions' runtime (3.11), whichever Python runs the tests."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == FUNCTION_RUNTIME.python_version:
        return sys.executable
    found = shutil.which(f"python{FUNCTION_RUNTIME.python_version}")
    if found is None:
        missing_service(f"no python{FUNCTION_RUNTIME.python_version} for the bundle's venv")
        raise AssertionError("unreachable")
    return found


@pytest.fixture(scope="module")
def built_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    missing = [str(spec.function_dir / "main.py") for spec in DEFAULT_SPECS]
    missing = [path for path in missing if not Path(path).is_file()]
    if missing:
        missing_service(f"function entry points not written yet: {', '.join(missing)}")
    out_dir = tmp_path_factory.mktemp("bundles")
    return {bundle.name: bundle.path for bundle in build_all(out_dir)}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_bundle_imports_in_a_fresh_venv(
    name: str, built_bundles: dict[str, Path], tmp_path: Path
) -> None:
    source = tmp_path / "source"
    with zipfile.ZipFile(built_bundles[name]) as archive:
        archive.extractall(source)
    # The web app's files are package data the submit function serves at /.
    assert (source / "podscribe" / "web" / "index.html").is_file()
    env_dir = tmp_path / "venv"
    subprocess.run([_runtime_python(), "-m", "venv", "--clear", env_dir], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert version.stdout.strip() == FUNCTION_RUNTIME.python_version
    # Only what a build server would have: no PYTHONPATH, no PODSCRIBE_*, no credentials.
    clean_env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")}
    for pip_setting in ("PIP_CACHE_DIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        if pip_setting in os.environ:
            clean_env[pip_setting] = os.environ[pip_setting]

    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-r", "requirements.txt"],
        cwd=source, env=clean_env, capture_output=True, text=True, timeout=800, check=False,
    )  # fmt: skip
    if install.returncode != 0 and "Could not find a version" in install.stderr:
        missing_service(f"package index unreachable for {name}: {install.stderr[-500:]}")
    assert install.returncode == 0, install.stderr[-3000:]

    consistent = subprocess.run(
        [python, "-m", "pip", "check"], env=clean_env, capture_output=True, text=True, check=False
    )
    assert consistent.returncode == 0, consistent.stdout

    probe = subprocess.run(
        [python, "-c", _IMPORT_PROBE, json.dumps(TARGETS[name])],
        cwd=source, env=clean_env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    # podscribe comes from the bundle itself, not from an installed distribution.
    assert Path(report["podscribe"]).resolve().is_relative_to(source.resolve())
    for target, signature in TARGETS[name].items():
        assert report["targets"][target]["callable"] is True
        assert report["targets"][target]["signature"] == signature, (target, report)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_pin_has_a_wheel_for_the_function_runtime(tmp_path: Path) -> None:
    """What Cloud Functions' python311 build on Linux x86_64 installs, fetched and hash-checked."""
    for bundle in build_all(tmp_path):
        try:
            wheels = check_runtime_wheels(bundle)
        except BundleError as error:
            # A pin without a runtime wheel must fail; only an unreachable index is missing.
            if any(sign in str(error) for sign in _UNREACHABLE):
                missing_service(f"package index unreachable: {str(error)[-300:]}")
            raise
        assert wheels >= len(bundle.requirements) - 1, (bundle.name, wheels)
