"""``up``, ``down`` and ``status`` of the local profile.

Everything ``up`` starts is recorded in the state folder as it starts
(:mod:`local_emulators.state`), so ``down`` stops exactly that, also after a crash, and
``up`` twice does not start twice. The Pub/Sub topics and subscriptions are
:mod:`local_emulators.topics`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from local_emulators.emulators import start_fake_gcs, start_pubsub_emulator
from local_emulators.processes import (
    Started,
    StartupError,
    command_line,
    http_status,
    port_open,
    start_process,
    stop_group,
    wait_until,
)
from local_emulators.services import (
    ensure_database,
    postgres_answers,
    redis_answers,
    start_private_postgres,
    start_private_redis,
)
from local_emulators.state import (
    ProfileState,
    kept_secret,
    private_dir,
    process_record,
    record_alive,
    state_dir,
    state_path,
    webhook_secret_path,
    write_private,
)
from local_emulators.topics import SWEEP_TOPIC, create_pubsub_resources
from podscribe.jobs.launchers.local import job_process_alive
from podscribe.log import url_host
from podscribe.settings import ApiSettings, LocalProfileSettings, Settings

__all__ = [
    "ProfileState",
    "child_environment",
    "down",
    "state_path",
    "status",
    "up",
    "webhook_secret_path",
]

ROOT = Path(__file__).resolve().parents[1]


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


def _functions_framework() -> str:
    candidate = Path(sys.executable).with_name("functions-framework")
    found = str(candidate) if candidate.exists() else shutil.which("functions-framework")
    if not found:
        raise StartupError("functions-framework is not installed (pip install -e '.[dev]')")
    return found


def _answers_200(url: str) -> bool:
    return http_status(url) == 200


def _api_key(settings: ApiSettings, directory: Path) -> str:
    if settings.api_keys:
        return settings.api_key_values[0]
    return kept_secret(directory / "api-key", prefix="local-")


def _check_ports(settings: LocalProfileSettings, with_fixtures: bool) -> None:
    ports = {
        "submit": (settings.local_submit_port, "PODSCRIBE_LOCAL_SUBMIT_PORT"),
        "dispatch": (settings.local_dispatch_port, "PODSCRIBE_LOCAL_DISPATCH_PORT"),
        "sweep": (settings.local_sweep_port, "PODSCRIBE_LOCAL_SWEEP_PORT"),
        "the Pub/Sub emulator": (settings.local_pubsub_port, "PODSCRIBE_LOCAL_PUBSUB_PORT"),
        "fake-gcs-server": (settings.local_gcs_port, "PODSCRIBE_LOCAL_GCS_PORT"),
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
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{settings.local_pubsub_port}",
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{settings.local_gcs_port}",
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


class _Starter:
    """Starts parts one by one, recording each in the state file as soon as it runs."""

    def __init__(self, settings: Settings, state: ProfileState, directory: Path) -> None:
        self.settings = settings
        self.state = state
        self.logs = directory / "logs"
        self.environment: dict[str, str] | None = None

    def remember(self, started: Started, argv: list[str], port: int | None) -> None:
        self.state.processes.append(process_record(started, argv, port))
        self.state.save(state_path(self.settings))  # saved as we go: `down` works after a crash

    def start(self, name: str, argv: list[str], port: int | None) -> Started:
        started = start_process(
            name, argv, log_path=self.logs / f"{name}.log", env=self.environment, cwd=ROOT
        )
        self.remember(started, argv, port)
        return started

    def functions(self) -> None:
        framework = _functions_framework()
        settings = self.settings
        targets = [
            ("submit", "functions/submit/main.py", settings.local_submit_port, "http"),
            ("dispatch", "functions/dispatch/main.py", settings.local_dispatch_port, "cloudevent"),
            ("sweep", "functions/dispatch/main.py", settings.local_sweep_port, "cloudevent"),
        ]
        started = []
        for target, source, port, signature in targets:
            argv = [
                framework,
                "--target",
                target,
                "--source",
                str(ROOT / source),
                "--signature-type",
                signature,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            started.append((self.start(target, argv, port), port))
        for process, port in started:
            if process.name == "submit":
                ready = partial(_answers_200, f"http://127.0.0.1:{port}/healthz")
            else:
                ready = partial(port_open, "127.0.0.1", port)
            wait_until(f"{process.name} on 127.0.0.1:{port}", ready, timeout=60, started=process)

    def fixtures(self) -> None:
        port = self.settings.local_fixtures_port
        argv = [sys.executable, "-m", "local_emulators.fixtures", "--port", str(port)]
        process = self.start("fixtures", argv, port)
        wait_until(
            "the demo fixtures", partial(port_open, "127.0.0.1", port), timeout=20, started=process
        )

    def sweep_timer(self) -> None:
        settings = self.settings
        url = (
            f"http://127.0.0.1:{settings.local_sweep_port}/projects/{settings.project_id}"
            f"/topics/{SWEEP_TOPIC}"
        )
        argv = [
            sys.executable,
            "-m",
            "local_emulators.sweep_timer",
            "--url",
            url,
            "--interval",
            str(settings.local_sweep_interval_seconds),
        ]
        self.start("sweep-timer", argv, None)


def up(settings: Settings, *, with_fixtures: bool = False, out: Any = sys.stdout) -> ProfileState:
    """Start every part of the local profile; return once each answers.

    Raises:
        StartupError: a port is taken or a part did not answer in time (named).
    """
    directory = private_dir(state_dir(settings))
    existing = ProfileState.load(state_path(settings))
    if existing and any(record_alive(record) for record in existing.processes):
        if existing.with_fixtures or not with_fixtures:
            print(f"already up: {existing.submit_url}", file=out)
            return existing
        raise StartupError(
            "the local profile is up without the demo fixtures; "
            "run `python -m local_emulators down` first"
        )
    _check_ports(settings, with_fixtures)
    state = ProfileState(
        submit_url=f"http://127.0.0.1:{settings.local_submit_port}",
        api_key=_api_key(settings, directory),
        database_url="",
        redis_url=None,
        project_id=settings.project_id,
        with_fixtures=with_fixtures,
    )
    starter = _Starter(settings, state, directory)
    try:
        state.database_url = _database(settings, directory, starter, out)
        state.redis_url = _redis(settings, starter, out)
        pubsub = start_pubsub_emulator(
            settings.local_pubsub_port,
            directory / "pubsub",
            starter.logs / "pubsub.log",
            project=settings.project_id,
        )
        starter.remember(pubsub, command_line(pubsub.pid), settings.local_pubsub_port)
        gcs = start_fake_gcs(settings.local_gcs_port, directory / "gcs", starter.logs / "gcs.log")
        starter.remember(gcs, command_line(gcs.pid), settings.local_gcs_port)

        wiring = _wiring(settings, state, directory)
        starter.environment = child_environment(settings, wiring)
        # Our own Google clients (provisioning below) find the emulators the same way.
        for name in ("PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
            os.environ[name] = wiring[name]
        _provision(settings, state.database_url)
        if with_fixtures:
            starter.fixtures()
        starter.functions()
        starter.sweep_timer()
    except BaseException:
        print("start-up failed; stopping what was started", file=out)
        down(settings, out=out)
        raise
    return state


def _instance_id(directory: Path) -> str:
    """A random id of this state folder, made once and kept in it."""
    marker = directory / "instance-id"
    if not marker.exists():
        write_private(marker, secrets.token_hex(4))
    return marker.read_text().strip()


def _database(settings: Settings, directory: Path, starter: _Starter, out: Any) -> str:
    # Without a configured URL, each state folder gets a database of its own: its rows must
    # match the transcripts in its own fake-gcs data (a fresh clone must not inherit jobs whose
    # transcripts live in another checkout's folder).
    configured = (
        settings.database_url.get_secret_value()
        if settings.database_url
        else f"postgresql://postgres@127.0.0.1:5432/podscribe_local_{_instance_id(directory)}"
    )
    if postgres_answers(configured):
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
    ensure_database(url)
    print(
        f"PostgreSQL: started a private cluster on 127.0.0.1:{settings.local_postgres_port}",
        file=out,
    )
    return url


def _redis(settings: Settings, starter: _Starter, out: Any) -> str | None:
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


def _provision(settings: Settings, database_url: str) -> None:
    from podscribe.db import create_db_engine, migrate, wait_for_database
    from podscribe.storage import TranscriptStore

    db_settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    engine = create_db_engine(db_settings)
    try:
        wait_for_database(engine, db_settings)
        migrate(engine)
    finally:
        engine.dispose()
    TranscriptStore(settings).ensure_bucket()
    create_pubsub_resources(settings, settings.local_dispatch_port, settings.local_sweep_port)


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
    print(f"submit URL: {state.submit_url}", file=out)
    return healthy
