"""The connection factory and the migrations.

One factory serves every part. ``PODSCRIBE_DATABASE_URL`` gives a plain pg8000 connection
(local profile, tests); ``CLOUDSQL_CONNECTION_NAME`` gives the same pg8000 DB-API connection
through the Cloud SQL Python Connector (IAM or password auth, private IP by default). Both sit
behind a SQLAlchemy pool (Core only, no ORM) so threads of one process share a few connections
and a connection that died with the database is replaced, not handed out.

Migrations are ordered ``migrations/NNNN_name.sql`` files recorded in ``schema_migrations``;
``python -m podscribe.db migrate`` applies the missing ones under a transaction-level advisory
lock, so running it twice, or from two processes at once, is harmless.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tenacity import RetryError

from podscribe.errors import DatabaseUnavailableError, SettingsError
from podscribe.retry import retrying
from podscribe.settings import DatabaseSettings

log = logging.getLogger(__name__)

_MIGRATION_LOCK_KEY = 0x706F_6473_6372  # "podscr": one advisory lock id for migrations


@dataclass(frozen=True)
class Migration:
    """One versioned schema change.

    Attributes:
        version: the leading number of the file name.
        name: the file name.
        sql: its statements.
    """

    version: int
    name: str
    sql: str


def describe_target(settings: DatabaseSettings) -> str:
    """Where the database is, for messages (never the password)."""
    if settings.cloudsql_connection_name:
        return (
            f"Cloud SQL instance {settings.cloudsql_connection_name} (database {settings.db_name})"
        )
    if settings.database_url is None:
        return "no database configured"
    parts = urlsplit(settings.database_url.get_secret_value())
    return f"PostgreSQL at {parts.hostname}:{parts.port or 5432}{parts.path or ''}"


def build_cloudsql_connector(settings: DatabaseSettings, *, credentials: Any | None = None) -> Any:
    """The Cloud SQL Python Connector the configuration describes.

    The caller owns it: ``close()`` it at shutdown (it runs an event loop thread and an
    HTTP session to the Admin API).

    Args:
        settings: ``db_ip_type``, ``sqladmin_api_endpoint``, and ``db_password`` (unset
            means IAM database authentication) shape the connector.
        credentials: ``google.auth`` credentials to call the Admin API with; Application
            Default Credentials when omitted.

    Returns:
        A ``google.cloud.sql.connector.Connector`` (lazy refresh).
    """
    from google.cloud.sql.connector import Connector, IPTypes

    options: dict[str, Any] = {
        "ip_type": IPTypes[settings.db_ip_type.upper()],
        "enable_iam_auth": settings.db_password is None,
        "refresh_strategy": "lazy",  # serverless: no background refresh between requests
    }
    if settings.sqladmin_api_endpoint:
        options["sqladmin_api_endpoint"] = settings.sqladmin_api_endpoint
    if credentials is not None:
        options["credentials"] = credentials
    return Connector(**options)


def _cloudsql_creator(settings: DatabaseSettings, connector: Any | None) -> Callable[[], Any]:
    if not settings.db_user:
        raise SettingsError("PODSCRIBE_DB_USER: required with CLOUDSQL_CONNECTION_NAME")
    if connector is None:
        connector = build_cloudsql_connector(settings)
    name = settings.cloudsql_connection_name or ""
    kwargs: dict[str, Any] = {"user": settings.db_user, "db": settings.db_name}
    if settings.db_password is not None:
        kwargs["password"] = settings.db_password.get_secret_value()

    def creator() -> Any:
        return connector.connect(name, "pg8000", **kwargs)

    return creator


def create_db_engine(settings: DatabaseSettings, *, connector: Any | None = None) -> Engine:
    """Build the pooled engine the configuration asks for.

    Args:
        settings: the configuration; exactly one of ``database_url`` and
            ``cloudsql_connection_name`` selects the path.
        connector: an existing ``google.cloud.sql.connector.Connector`` to reuse (one per
            process is the connector's own advice; :func:`build_cloudsql_connector` makes it
            from settings); built from settings when omitted.

    Returns:
        A SQLAlchemy engine whose connections are pg8000 DB-API connections.

    Raises:
        SettingsError: neither or both ways are configured.
    """
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_pool_size,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    if settings.cloudsql_connection_name and settings.database_url:
        raise SettingsError(
            "PODSCRIBE_DATABASE_URL and CLOUDSQL_CONNECTION_NAME are both set; choose one"
        )
    if settings.cloudsql_connection_name:
        creator = _cloudsql_creator(settings, connector)
        return sa.create_engine("postgresql+pg8000://", creator=creator, **pool)
    if settings.database_url is None:
        raise SettingsError("PODSCRIBE_DATABASE_URL or CLOUDSQL_CONNECTION_NAME: one is required")
    url = sa.engine.make_url(settings.database_url.get_secret_value()).set(
        drivername="postgresql+pg8000"
    )
    return sa.create_engine(url, **pool)


def wait_for_database(engine: Engine, settings: DatabaseSettings) -> None:
    """Block until the database answers, with bounded exponential backoff.

    Raises:
        DatabaseUnavailableError: it did not answer within ``PODSCRIBE_DB_WAIT_SECONDS``;
            the message names the database and the last error.
    """
    policy = retrying(
        within_seconds=settings.db_wait_seconds,
        initial_seconds=0.2,
        max_seconds=5,
        retry_on=_is_unreachable,
        log=log,
        what=f"waiting for {describe_target(settings)}",
        reraise=False,
    )
    try:
        for attempt in policy:
            with attempt, engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
    except RetryError as error:
        last = error.last_attempt.exception()
        raise DatabaseUnavailableError(
            f"gave up after {settings.db_wait_seconds:g}s waiting for "
            f"{describe_target(settings)}: {last}"
        ) from None


def _is_unreachable(error: BaseException) -> bool:
    """A database that is not up yet: refused, reset, or timed out (the driver's errors)."""
    return isinstance(
        error, (sa.exc.OperationalError, sa.exc.InterfaceError, OSError)
    ) or _server_unavailable(error)


_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")
"""Connection exceptions, and the server going away or not taking connections yet: 57P01
admin shutdown, 57P02 crash shutdown, 57P03 "the database system is shutting down" /
"starting up" / "in recovery mode". pg8000 raises those last ones as ``ProgrammingError``."""


def _server_unavailable(error: BaseException) -> bool:
    """Whether the server answered that it is not available (its SQLSTATE says so)."""
    orig = getattr(error, "orig", error)
    fields = orig.args[0] if getattr(orig, "args", None) else None
    code = fields.get("C") if isinstance(fields, dict) else None
    return isinstance(code, str) and code.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction: committed on success, rolled back on error.

    Raises:
        DatabaseUnavailableError: the database could not be reached.
    """
    try:
        with engine.begin() as connection:
            yield connection
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
        if getattr(error, "connection_invalidated", False) or _is_connect_error(error):
            raise DatabaseUnavailableError(f"database unavailable: {error.orig}") from error
        raise
    except sa.exc.DBAPIError as error:
        if _server_unavailable(error):  # shutting down, starting up, recovering
            raise DatabaseUnavailableError(f"database unavailable: {error.orig}") from error
        raise


def _is_connect_error(error: sa.exc.DBAPIError) -> bool:
    text = str(error.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "can't create a connection",
            "network error",
            "timed out",
            "connection reset",
            "broken pipe",
        )
    )


def load_migrations() -> list[Migration]:
    """The migrations shipped in the package, in order."""
    folder = resources.files("podscribe") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def migrate(engine: Engine) -> list[str]:
    """Apply every missing migration, once, even when run concurrently.

    Returns:
        The names of the migrations this call applied (empty when up to date).
    """
    applied: list[str] = []
    with transaction(engine) as connection:
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
        )
        connection.execute(
            sa.text(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        done = set(connection.execute(sa.text("SELECT version FROM schema_migrations")).scalars())
        driver = connection.connection.driver_connection
        for migration in load_migrations():
            if migration.version in done:
                continue
            # Simple-query protocol: a migration file holds several statements.
            driver.execute_simple(migration.sql)  # type: ignore[union-attr]
            connection.execute(
                sa.text("INSERT INTO schema_migrations (version, name) VALUES (:v, :n)"),
                {"v": migration.version, "n": migration.name},
            )
            applied.append(migration.name)
    return applied


def applied_migrations(engine: Engine) -> list[str]:
    """Names of the migrations recorded in the database."""
    with transaction(engine) as connection:
        exists = connection.execute(sa.text("SELECT to_regclass('schema_migrations')")).scalar()
        if exists is None:
            return []
        rows = connection.execute(sa.text("SELECT name FROM schema_migrations ORDER BY version"))
        return list(rows.scalars())


def main(argv: list[str] | None = None) -> int:
    """``python -m podscribe.db migrate|status``."""
    from podscribe.log import configure_logging
    from podscribe.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m podscribe.db", description=__doc__)
    parser.add_argument("command", choices=["migrate", "status"])
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        configure_logging(settings)
        engine = create_db_engine(settings)
        wait_for_database(engine, settings)
        if args.command == "migrate":
            names = migrate(engine)
            print(f"applied {len(names)} migration(s)" + (f": {', '.join(names)}" if names else ""))
        else:
            known = {migration.name for migration in load_migrations()}
            done = applied_migrations(engine)
            for name in sorted(known | set(done)):
                print(f"{'applied' if name in done else 'pending'} {name}")
    except (SettingsError, DatabaseUnavailableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
