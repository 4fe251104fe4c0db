"""Fixtures shared by every test: configuration and a real, throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from podscribe.db import create_db_engine, migrate
from podscribe.settings import Settings, load_settings
from tests.services import throwaway_database


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
