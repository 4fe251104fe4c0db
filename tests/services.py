"""Finding the real services tests talk to.

A missing service skips its tests on a developer's machine, and fails them under ``CI=true``:
CI must never go green by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit

import pg8000.native
import pytest

ADMIN_DATABASE_URL = os.environ.get(
    "PODSCRIBE_TEST_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("PODSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing_service(message: str) -> NoReturn:
    """Skip, or fail under CI, because a service the test needs is not there."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service missing under CI: {message}")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin_connection() -> pg8000.native.Connection:
    parts = urlsplit(ADMIN_DATABASE_URL)
    try:
        return pg8000.native.Connection(
            user=parts.username or "postgres",
            password=parts.password,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database=(parts.path or "/postgres").lstrip("/") or "postgres",
            timeout=5,
        )
    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError) as error:
        missing_service(f"PostgreSQL at {ADMIN_DATABASE_URL}: {error}")
        raise


def database_url_for(name: str) -> str:
    parts = urlsplit(ADMIN_DATABASE_URL)
    return parts._replace(path=f"/{name}").geturl()


@contextmanager
def throwaway_database(template: str | None = None) -> Iterator[str]:
    """Create a database (optionally from a template), yield its URL, drop it afterwards."""
    name = f"podscribe_test_{uuid.uuid4().hex[:12]}"
    admin = admin_connection()
    try:
        clause = f" TEMPLATE {pg8000.native.identifier(template)}" if template else ""
        admin.run(f"CREATE DATABASE {pg8000.native.identifier(name)}{clause}")
        yield database_url_for(name)
    finally:
        admin.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
        admin.close()
