"""Fixtures shared by every test: configuration and a real, throwaway PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import Engine

from local_emulators.emulators import start_fake_gcs, start_moto_s3, start_pubsub_emulator
from local_emulators.processes import Started, StartupError, stop_group
from podscribe.db import create_db_engine, migrate
from podscribe.settings import Settings, load_settings
from tests.services import free_port, missing_service, throwaway_database

TEST_PROJECT = "podscribe-test"
DRILLS = Path(__file__).parent / "drills"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--drills",
        action="store_true",
        help="collect tests/drills (faults broken for real, `nox -s drills`), not the suite",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The drills run on their own (`nox -s drills`), never inside the suite."""
    if collection_path == DRILLS and not config.getoption("--drills"):
        return True
    return None


# CI is reproducible: under CI=true every hypothesis test tries the same examples each run
# (derandomized, no example database carried between runs); tests keep their own bounds.
hypothesis_settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def migrated_template() -> Iterator[str]:
    """A database with every migration applied, cloned for each test that needs one."""
    with throwaway_database() as url:
        engine = create_db_engine(load_settings(database_url=url, env="test"))
        migrate(engine)
        engine.dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def database_url(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    with throwaway_database(template=migrated_template) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url, env="test", db_wait_seconds=5)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@contextmanager
def _emulator(what: str, variable: str, value: str, start: Callable[[], Started]) -> Iterator[str]:
    """Run an emulator for the session with Google's variable pointing at it."""
    try:
        started = start()
    except (OSError, StartupError) as error:
        missing_service(f"{what}: {error}")
        raise
    previous = os.environ.get(variable)
    os.environ[variable] = value
    try:
        yield value
    finally:
        if previous is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = previous
        stop_group(started.pid)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server for the whole session; yields its URL (``STORAGE_EMULATOR_HOST``)."""
    port, root = free_port(), tmp_path_factory.mktemp("fake-gcs")
    with _emulator(
        "fake-gcs-server",
        "STORAGE_EMULATOR_HOST",
        f"http://127.0.0.1:{port}",
        lambda: start_fake_gcs(port, root / "data", root / "fake-gcs.log"),
    ) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server for the whole session; yields its endpoint URL
    (``PODSCRIBE_S3_ENDPOINT_URL``). Nothing global points at it: a test opts in."""
    port, root = free_port(), tmp_path_factory.mktemp("moto-s3")
    try:
        started = start_moto_s3(port, root / "moto.log")
    except (OSError, StartupError) as error:
        missing_service(f"moto S3 server (moto[server], the dev extra): {error}")
        raise
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(started.pid)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gcloud Pub/Sub emulator for the whole session; yields ``host:port``."""
    port, root = free_port(), tmp_path_factory.mktemp("pubsub")
    with _emulator(
        "Pub/Sub emulator",
        "PUBSUB_EMULATOR_HOST",
        f"127.0.0.1:{port}",
        lambda: start_pubsub_emulator(
            port, root / "data", root / "pubsub.log", project=TEST_PROJECT
        ),
    ) as host:
        yield host
