"""Fixtures shared by every test: configuration and a real, throwaway PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from local_emulators.emulators import start_fake_gcs, start_pubsub_emulator
from local_emulators.processes import StartupError, stop_group
from podscribe.db import create_db_engine, migrate
from podscribe.settings import Settings, load_settings
from tests.services import free_port, missing_service, throwaway_database

TEST_PROJECT = "podscribe-test"


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


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server for the whole session; yields its URL (``STORAGE_EMULATOR_HOST``)."""
    port = free_port()
    root = tmp_path_factory.mktemp("fake-gcs")
    try:
        started = start_fake_gcs(port, root / "data", root / "fake-gcs.log")
    except (OSError, StartupError) as error:
        missing_service(f"fake-gcs-server: {error}")
        raise
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    yield url
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous
    stop_group(started.pid)


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gcloud Pub/Sub emulator for the whole session; yields ``host:port``."""
    port = free_port()
    root = tmp_path_factory.mktemp("pubsub")
    try:
        started = start_pubsub_emulator(
            port, root / "data", root / "pubsub.log", project=TEST_PROJECT
        )
    except (OSError, StartupError) as error:
        missing_service(f"Pub/Sub emulator: {error}")
        raise
    host = f"127.0.0.1:{port}"
    previous = os.environ.get("PUBSUB_EMULATOR_HOST")
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    yield host
    if previous is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = previous
    stop_group(started.pid)
