"""``up``, ``down`` and ``status`` of the local profile.

Everything ``up`` starts is recorded in the state folder as it starts
(:mod:`local_emulators.state`), so ``down`` stops exactly that, also after a crash, and
``up`` twice does not start twice. What differs between ``--stack gcp`` and
``--stack selfhosted`` (storage, wake-ups) is :mod:`local_emulators.stacks`; the Pub/Sub
topics and subscriptions of ``gcp`` are :mod:`local_emulators.topics`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from local_emulators.processes import StartupError, port_open, stop_group
from local_emulators.services import (
    drop_database,
    ensure_database,
    postgres_answers,
    redis_answers,
    start_private_postgres,
    start_private_redis,
)
from local_emulators.stacks import Stack, as_stack, stack_ports, stack_wiring, start_stack_services
from local_emulators.starter import PartStarter
from local_emulators.state import (
    ProfileState,
    instance_id,
    kept_secret,
    private_dir,
    record_alive,
    state_dir,
    state_path,
    webhook_secret_path,
)
from local_emulators.topics import create_pubsub_resources
from podscribe.jobs.launchers.local import job_process_alive
from podscribe.log import url_host
from podscribe.settings import ApiSettings, Settings, load_settings

__all__ = [
    "ProfileState",
    "child_environment",
    "down",
    "state_path",
    "status",
    "up",
    "webhook_secret_path",
]


def _require_free(port: int, what: str, variable: str) -> None:
    if port_open("127.0.0.1", port):
        raise StartupError(
            f"port {port} for {what} is taken on 127.0.0.1; free it or set {variable}"
        )


def child_environment(settings: Settings, overrides: Mapping[str, str]) -> dict[str, str]:
    """The parts' environment: ours (every PODSCRIBE_*/WHISPER_* passes on), plus the wiring."""
    environment = dict(os.environ)
    environment.update(overrides)
    environment.setdefault("PYTHONUNBUFFERED", "1")
    return environment


def _api_key(settings: ApiSettings, directory: Path) -> str:
    if settings.api_keys:
        return settings.api_key_values[0]
    return kept_secret(directory / "api-key", prefix="local-")


def _check_ports(settings: Settings, stack: Stack, with_fixtures: bool) -> None:
    ports = {
        "submit": (settings.local_submit_port, "PODSCRIBE_LOCAL_SUBMIT_PORT"),
        "sweep": (settings.local_sweep_port, "PODSCRIBE_LOCAL_SWEEP_PORT"),
        **stack_ports(settings, stack),
    }
    if with_fixtures:
        ports["the demo fixtures"] = (settings.local_fixtures_port, "PODSCRIBE_LOCAL_FIXTURES_PORT")
    for what, (port, variable) in ports.items():
        _require_free(port, what, variable)


def _wiring(settings: Settings, state: ProfileState, directory: Path) -> dict[str, str]:
    """The variables that connect the parts to each other (on top of the caller's own)."""
    wiring = {
        "PODSCRIBE_ENV": "local",
        "PODSCRIBE_DATABASE_URL": state.database_url,
        "PODSCRIBE_PROJECT_ID": settings.project_id,
        "PODSCRIBE_LAUNCHER": "local",
        "PODSCRIBE_LOCAL_STATE_DIR": str(directory),
        "PODSCRIBE_API_KEYS": ",".join(settings.api_key_values) or state.api_key,
        **stack_wiring(settings, as_stack(state.stack), instance_id(directory)),
    }
    if settings.webhook_secret is None and settings.webhook_secret_version is None:
        # Webhooks from the local profile are signed like production's; receivers under
        # development verify against the secret in the state folder.
        wiring["PODSCRIBE_WEBHOOK_SECRET"] = kept_secret(webhook_secret_path(settings))
    if state.redis_url:
        wiring["PODSCRIBE_REDIS_URL"] = state.redis_url
    if state.with_fixtures:
        fixtures = f"127.0.0.1:{settings.local_fixtures_port}"
        wiring |= {
            "PODSCRIBE_ITUNES_API_BASE": f"http://{fixtures}",
            "PODSCRIBE_APPLE_WEB_BASE": f"http://{fixtures}",
            "PODSCRIBE_SSRF_ALLOW": ",".join(dict.fromkeys([*settings.ssrf_allow, fixtures])),
        }
    return wiring


def up(
    settings: Settings,
    *,
    stack: Stack = "gcp",
    with_fixtures: bool = False,
    out: Any = sys.stdout,
) -> ProfileState:
    """Start every part of the local profile on ``stack``; return once each answers.

    Raises:
        StartupError: a port is taken, a part did not answer in time (named), or the profile
            already runs another stack or without the demo fixtures asked for.
    """
    directory = private_dir(state_dir(settings))
    existing = ProfileState.load(state_path(settings))
    if existing and any(record_alive(record) for record in existing.processes):
        if existing.stack != stack:
            raise StartupError(
                f"the local profile is up on --stack {existing.stack}; "
                "run `python -m local_emulators down` first"
            )
        if existing.with_fixtures or not with_fixtures:
            print(f"already up: {existing.submit_url}", file=out)
            return existing
        raise StartupError(
            "the local profile is up without the demo fixtures; "
            "run `python -m local_emulators down` first"
        )
    _check_ports(settings, stack, with_fixtures)
    state = ProfileState(
        submit_url=f"http://127.0.0.1:{settings.local_submit_port}",
        api_key=_api_key(settings, directory),
        database_url="",
        redis_url=None,
        project_id=settings.project_id,
        with_fixtures=with_fixtures,
        stack=stack,
    )
    starter = PartStarter(settings, state, directory)
    try:
        # moto keeps objects in memory: the self-hosted stack's rows start afresh with them.
        fresh = stack == "selfhosted"
        state.database_url = _database(settings, directory, starter, out, fresh=fresh)
        state.redis_url = _redis(settings, starter, out)
        start_stack_services(settings, stack, directory, starter.remember)
        wiring = _wiring(settings, state, directory)
        starter.environment = child_environment(settings, wiring)
        _provision(settings, state.database_url, wiring)
        if with_fixtures:
            starter.fixtures()
        starter.functions()
        if stack == "selfhosted":
            starter.consumer()
        starter.sweep_timer()
    except BaseException:
        print("start-up failed; stopping what was started", file=out)
        down(settings, out=out)
        raise
    return state


def _database(
    settings: Settings, directory: Path, starter: PartStarter, out: Any, *, fresh: bool = False
) -> str:
    """The profile's database URL, the database created if needed.

    Without a configured URL, each state folder gets a database of its own: its rows must
    match the transcripts in its own fake-gcs data (a fresh clone must not inherit jobs whose
    transcripts live in another checkout's folder). With ``fresh`` (storage that starts empty,
    moto's), that database is a separate one, made anew: no row names a transcript gone with
    the last ``down``. A configured database is never dropped.
    """
    name = f"podscribe_local_{instance_id(directory)}" + ("_selfhosted" if fresh else "")
    owned = settings.database_url is None
    configured = (
        settings.database_url.get_secret_value()
        if settings.database_url
        else f"postgresql://postgres@127.0.0.1:5432/{name}"
    )
    if postgres_answers(configured):
        if owned and fresh:
            drop_database(configured)
        ensure_database(configured)
        print(f"PostgreSQL: using {url_host(configured)}", file=out)
        return configured
    _require_free(
        settings.local_postgres_port, "the private PostgreSQL", "PODSCRIBE_LOCAL_POSTGRES_PORT"
    )
    started, argv, url = start_private_postgres(
        directory / "postgres", settings.local_postgres_port, starter.logs / "postgres.log"
    )
    starter.remember(started, argv, settings.local_postgres_port)
    if fresh:
        url = f"{url.rsplit('/', 1)[0]}/{name}"
        drop_database(url)
    ensure_database(url)
    print(
        f"PostgreSQL: started a private cluster on 127.0.0.1:{settings.local_postgres_port}",
        file=out,
    )
    return url


def _redis(settings: Settings, starter: PartStarter, out: Any) -> str | None:
    if settings.redis_url and redis_answers(settings.redis_url):
        print(f"Redis: using {url_host(settings.redis_url)}", file=out)
        return settings.redis_url
    if shutil.which("redis-server"):
        _require_free(
            settings.local_redis_port, "the private redis-server", "PODSCRIBE_LOCAL_REDIS_PORT"
        )
        started, argv, url = start_private_redis(
            settings.local_redis_port, starter.logs / "redis.log"
        )
        starter.remember(started, argv, settings.local_redis_port)
        print(f"Redis: started redis-server on 127.0.0.1:{settings.local_redis_port}", file=out)
        return url
    print(
        "Redis: none reachable and redis-server is not installed; rate limits run on the "
        "in-memory backstop",
        file=out,
    )
    return None


def _provision(settings: Settings, database_url: str, wiring: Mapping[str, str]) -> None:
    """Migrate the database, create the bucket and (``gcp``) the topics, as the parts see them.

    The settings are read again under the parts' wiring, so the bucket is made on the stack's
    storage, and a configuration the parts would refuse fails here, before they start.
    """
    from podscribe.db import create_db_engine, migrate, wait_for_database
    from podscribe.storage import TranscriptStore

    with _environment(wiring):
        wired = load_settings(database_url=SecretStr(database_url))
        engine = create_db_engine(wired)
        try:
            wait_for_database(engine, wired)
            migrate(engine)
        finally:
            engine.dispose()
        TranscriptStore(wired).ensure_bucket()
        if wired.wakeup_backend == "pubsub":
            create_pubsub_resources(wired, settings.local_dispatch_port, settings.local_sweep_port)


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``variables`` set (Google's clients read their emulators' hosts
    there), restored afterwards."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _job_pid_files(settings: Settings) -> Iterator[Path]:
    jobs = state_dir(settings) / "jobs"
    if jobs.is_dir():
        yield from jobs.glob("*.pid")


def down(settings: Settings, *, out: Any = sys.stdout) -> list[str]:
    """Stop everything ``up`` started (and the local launcher's jobs). Returns their names."""
    stopped: list[str] = []
    for pid_file in _job_pid_files(settings):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid_file.unlink(missing_ok=True)
            continue
        if job_process_alive(pid):
            stop_group(pid)
            stopped.append(f"job {pid_file.stem}")
        pid_file.unlink(missing_ok=True)
    path = state_path(settings)
    state = ProfileState.load(path)
    if state is None:
        print("nothing to stop", file=out)
        return stopped
    for record in reversed(state.processes):
        if record_alive(record):
            stop_group(record.pid)
            stopped.append(record.name)
    path.unlink(missing_ok=True)
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}", file=out)
    return stopped


def status(settings: Settings, *, out: Any = sys.stdout) -> bool:
    """Print what runs; True when every recorded part is alive."""
    state = ProfileState.load(state_path(settings))
    if state is None:
        print("not running", file=out)
        return False
    healthy = True
    for record in state.processes:
        alive = record_alive(record)
        healthy &= alive
        where = f" 127.0.0.1:{record.port}" if record.port else ""
        print(f"{'up  ' if alive else 'DOWN'} {record.name:<16} pid {record.pid}{where}", file=out)
    print(f"stack:      {state.stack}", file=out)
    print(f"submit URL: {state.submit_url}", file=out)
    return healthy
