"""PostgreSQL and Redis for the local profile: use the configured ones when they answer,
otherwise start private ones in the state folder."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local_emulators.processes import Started, StartupError, port_open, start_process, wait_until


def postgres_answers(url: str) -> bool:
    """Whether the server of ``url`` accepts a connection (to its maintenance database)."""
    import pg8000.native

    parts = urlsplit(url)
    try:
        connection = pg8000.native.Connection(
            user=parts.username or "postgres",
            password=parts.password,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            database="postgres",
            timeout=3,
        )
    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError):
        return False  # refused, timed out, or refused us: not usable
    connection.close()
    return True


def _maintenance_connection(url: str) -> tuple[str, Any]:
    """The name of ``url``'s database, and a connection to its server's ``postgres`` one."""
    import pg8000.native

    parts = urlsplit(url)
    name = (parts.path or "/podscribe").lstrip("/") or "podscribe"
    connection = pg8000.native.Connection(
        user=parts.username or "postgres",
        password=parts.password,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        database="postgres",
        timeout=10,
    )
    return name, connection


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist yet."""
    import pg8000.native

    name, connection = _maintenance_connection(url)
    try:
        if not connection.run("SELECT 1 FROM pg_database WHERE datname = :name", name=name):
            connection.run(f"CREATE DATABASE {pg8000.native.identifier(name)}")
    finally:
        connection.close()


def drop_database(url: str) -> None:
    """Drop the database named in ``url`` if it exists, closing its connections."""
    import pg8000.native

    name, connection = _maintenance_connection(url)
    try:
        connection.run(f"DROP DATABASE IF EXISTS {pg8000.native.identifier(name)} WITH (FORCE)")
    finally:
        connection.close()


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise StartupError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found


def _as_postgres_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: drop to the postgres account when we are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _reachable_data_dir(data_dir: Path) -> Path:
    """Where the cluster's files can live: ``data_dir`` unless we are root and the
    ``postgres`` account (the one the server runs as) cannot reach it.

    The state folder is owner-only (0700), so as root a cluster inside it could never start
    (initdb failed with "permission denied"). Then the cluster lives in a folder of the
    ``postgres`` account's own under the system's temporary folder, one per ``data_dir``.
    """
    if os.geteuid() != 0:
        return data_dir
    reachable = subprocess.run(
        ["runuser", "-u", "postgres", "--", "test", "-x", str(data_dir.parent)],
        check=False,
        capture_output=True,
    )
    if reachable.returncode == 0:
        return data_dir
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    moved = Path(tempfile.gettempdir()) / f"podscribe-postgres-{digest}"
    moved.mkdir(mode=0o700, exist_ok=True)
    return moved


def start_private_postgres(
    data_dir: Path, port: int, log_path: Path
) -> tuple[Started, list[str], str]:
    """initdb (first time) and start a private cluster on 127.0.0.1:``port`` with trust auth."""
    data_dir = _reachable_data_dir(data_dir)
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data_dir, "postgres", "postgres")
        subprocess.run(
            _as_postgres_user(
                [
                    _postgres_binary("initdb"),
                    "-D",
                    str(data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
    argv = _as_postgres_user(
        [
            _postgres_binary("postgres"),
            "-D",
            str(data_dir),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data_dir}",
        ]
    )
    if os.geteuid() == 0:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    started = start_process("postgres", argv, log_path=log_path)
    url = f"postgresql://postgres@127.0.0.1:{port}/podscribe"
    wait_until(
        f"PostgreSQL on 127.0.0.1:{port}",
        lambda: postgres_answers(url),
        timeout=60,
        started=started,
    )
    return started, argv, url


def redis_answers(url: str) -> bool:
    """Whether a Redis server at ``url`` answers PING."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1
        ) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def start_private_redis(port: int, log_path: Path) -> tuple[Started, list[str], str]:
    """redis-server on 127.0.0.1:``port``, nothing kept on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StartupError("redis-server is not installed")
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    started = start_process("redis", argv, log_path=log_path)
    wait_until(
        f"redis-server on 127.0.0.1:{port}",
        lambda: port_open("127.0.0.1", port),
        timeout=20,
        started=started,
    )
    return started, argv, f"redis://127.0.0.1:{port}/0"
