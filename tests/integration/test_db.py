"""Migrations and the connection factory against a real PostgreSQL."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from podscribe.db import (
    applied_migrations,
    create_db_engine,
    load_migrations,
    migrate,
    transaction,
    wait_for_database,
)
from podscribe.errors import DatabaseUnavailableError, SettingsError
from podscribe.settings import load_settings
from tests.services import free_port, throwaway_database


def test_migrations_apply_from_zero_and_twice_is_harmless() -> None:
    with throwaway_database() as url:
        engine = create_db_engine(load_settings(database_url=url, env="test"))
        try:
            first = migrate(engine)
            assert first == [migration.name for migration in load_migrations()]
            assert migrate(engine) == []
            assert applied_migrations(engine) == first
            with engine.connect() as connection:
                tables = set(
                    connection.execute(
                        sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    ).scalars()
                )
            assert {"jobs", "job_access", "job_events", "schema_migrations"} <= tables
        finally:
            engine.dispose()


def test_concurrent_migrations_apply_each_once() -> None:
    with throwaway_database() as url:
        engine = create_db_engine(load_settings(database_url=url, env="test", db_pool_size=10))
        results: list[list[str]] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(6)

        def run() -> None:
            barrier.wait()
            try:
                results.append(migrate(engine))
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        engine.dispose()
        assert errors == []
        applied = [names for names in results if names]
        assert len(applied) == 1
        assert applied[0] == [migration.name for migration in load_migrations()]


def test_migrate_command_line() -> None:
    with throwaway_database() as url:
        env = {"PODSCRIBE_DATABASE_URL": url, "PODSCRIBE_ENV": "test", "PATH": "/usr/bin:/bin"}
        first = subprocess.run(
            [sys.executable, "-m", "podscribe.db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        names = [migration.name for migration in load_migrations()]
        assert f"applied {len(names)} migration(s): {', '.join(names)}" in first.stdout
        again = subprocess.run(
            [sys.executable, "-m", "podscribe.db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert again.stdout.strip() == "applied 0 migration(s)"
        status = subprocess.run(
            [sys.executable, "-m", "podscribe.db", "status"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert status.stdout.splitlines() == [f"applied {name}" for name in names]


def test_waiting_for_an_absent_database_gives_up_naming_it() -> None:
    port = free_port()  # nothing listens here
    settings = load_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{port}/podscribe",
        env="test",
        db_wait_seconds=1.5,
    )
    engine = create_db_engine(settings)
    with pytest.raises(DatabaseUnavailableError) as caught:
        wait_for_database(engine, settings)
    assert f"PostgreSQL at 127.0.0.1:{port}/podscribe" in str(caught.value)
    assert "gave up after 1.5s" in str(caught.value)


_ENCRYPTION_REQUESTS = (80877103, 80877104)  # SSLRequest, GSSENCRequest


def _refusing_server(message: str) -> tuple[int, threading.Thread]:
    """A port that answers each start-up packet as a PostgreSQL that is shutting down (or
    starting up) does: a FATAL ErrorResponse with SQLSTATE 57P03, then it hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    fields = (
        b"".join(
            kind + text.encode() + b"\0"
            for kind, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P03"), (b"M", message))
        )
        + b"\0"
    )
    error = b"E" + struct.pack("!i", len(fields) + 4) + fields

    def serve() -> None:
        with listener:
            for _ in range(2):  # the pool's connect and its retry at most
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    return
                with client, contextlib.suppress(OSError):
                    client.settimeout(5)
                    packets = client.makefile("rb")
                    while True:  # an SSL or GSS request first is answered "N": no
                        length, code = struct.unpack("!ii", packets.read(8))
                        packets.read(length - 8)
                        if code not in _ENCRYPTION_REQUESTS:
                            break
                        client.sendall(b"N")
                    client.sendall(error)
                    while client.recv(64):  # until the client hangs up (after Terminate)
                        pass

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    return listener.getsockname()[1], server


@pytest.mark.parametrize(
    "message", ["the database system is shutting down", "the database system is starting up"]
)
def test_a_server_not_taking_connections_is_unavailable_not_an_error(message: str) -> None:
    # pg8000 raises 57P03 as a ProgrammingError: it used to escape as a 500, not a 503.
    port, server = _refusing_server(message)
    settings = load_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{port}/podscribe", env="test"
    )
    engine = create_db_engine(settings)
    try:
        with pytest.raises(DatabaseUnavailableError) as caught, transaction(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
        assert message in str(caught.value)
    finally:
        engine.dispose()
    server.join(timeout=1)


def test_command_line_names_what_it_waited_for() -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "podscribe.db", "migrate"],
        env={
            "PODSCRIBE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x",
            "PODSCRIBE_DB_WAIT_SECONDS": "1",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr


def test_factory_needs_exactly_one_way_to_connect() -> None:
    with pytest.raises(SettingsError, match="PODSCRIBE_DATABASE_URL or CLOUDSQL_CONNECTION_NAME"):
        create_db_engine(load_settings(env="test", database_url=None))
    with pytest.raises(SettingsError, match="both set"):
        create_db_engine(
            load_settings(
                env="test",
                database_url="postgresql://x@127.0.0.1/db",
                cloudsql_connection_name="p:r:i",
            )
        )
