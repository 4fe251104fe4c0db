"""The real local profile for a drill: ``python -m local_emulators up`` on ports of its own,
its parts stopped and started again by name, their memory sampled, its jobs counted.

A drill breaks a part the way an outage would (``stop``: SIGTERM then SIGKILL of the part's
process group, as recorded in the profile's state file) and brings it back with the same
command line on the same port (``restart``), so the rest of the profile sees the address go
dark and come back, as clients of a real service do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from local_emulators.processes import process_alive, start_process, stop_group, wait_until
from local_emulators.state import ProcessRecord, ProfileState
from podscribe.db import create_db_engine, transaction
from podscribe.jobs.tables import job_events_table, jobs_table
from podscribe.settings import load_settings
from tests.services import REDIS_URL, free_port, throwaway_database

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

PORT_VARIABLES = ("SUBMIT", "DISPATCH", "SWEEP", "PUBSUB", "GCS", "S3", "FIXTURES", "POSTGRES")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; that is returned.

    Raises:
        AssertionError: nothing within ``timeout`` seconds (the message names ``what``).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def group_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        members = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class Profile:
    """A local profile started by a drill.

    Attributes:
        environment: what every ``python -m local_emulators`` call (and so every part) gets.
        state_dir: the profile's state folder (state.json, logs/, jobs/).
        submit_url: where submit listens, once up.
        api_key: the key the profile accepts, once up.
    """

    environment: dict[str, str]
    state_dir: Path
    submit_url: str = ""
    api_key: str = ""
    _engine: Engine | None = None

    def run(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "local_emulators", *args],
            env=self.environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def up(self, *args: str) -> None:
        started = self.run("up", *args)
        assert started.returncode == 0, started.stdout + started.stderr
        state = self.state()
        self.submit_url, self.api_key = state.submit_url, state.api_key

    def state(self) -> ProfileState:
        state = ProfileState.load(self.state_dir / "state.json")
        assert state is not None, "the profile is not up"
        return state

    def port(self, name: str) -> int:
        return int(self.environment[f"PODSCRIBE_LOCAL_{name.upper()}_PORT"])

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            settings = load_settings(database_url=self.state().database_url)
            self._engine = create_db_engine(settings)
        return self._engine

    def record(self, name: str) -> ProcessRecord:
        [record] = [record for record in self.state().processes if record.name == name]
        return record

    def stop(self, name: str, *, grace_seconds: float = 5) -> None:
        """Stop the part ``name`` (its whole process group), as an outage would."""
        stop_group(self.record(name).pid, grace_seconds=grace_seconds)

    def kill(self, name: str) -> None:
        """SIGKILL the part's whole group: no shutdown handler runs (a lost node)."""
        stop_group(self.record(name).pid, grace_seconds=0)

    def restart(self, name: str, ready: Callable[[], bool], *, timeout: float = 60) -> None:
        """Start the stopped part ``name`` again: same command line, port and environment."""
        record = self.record(name)
        assert not process_alive(record.pid), f"{name} still runs"
        started = start_process(
            name,
            record.cmdline,
            log_path=Path(f"{record.log}.again"),
            env=self._part_environment(),
            cwd=ROOT,
        )
        state = self.state()
        for index, existing in enumerate(state.processes):
            if existing.name == name:
                state.processes[index] = ProcessRecord(
                    name, started.pid, str(started.log_path), record.cmdline, record.port
                )
        state.save(self.state_dir / "state.json")
        wait_until(f"{name} back", ready, timeout=timeout, started=started)

    def _part_environment(self) -> dict[str, str]:
        # The wiring ``up`` gave the parts: the same variables, as the state file knows them.
        state = self.state()
        return {
            **self.environment,
            "PODSCRIBE_DATABASE_URL": state.database_url,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.port('pubsub')}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port('gcs')}",
        }

    def rss(self) -> dict[str, int]:
        """Resident memory of every part, in bytes, by name."""
        return {record.name: group_rss(record.pid) for record in self.state().processes}

    def statuses(self) -> dict[str, str]:
        """Every job's status, by id."""
        with transaction(self.engine) as conn:
            rows = conn.execute(sa.select(jobs_table.c.id, jobs_table.c.status))
            return {str(job_id): str(status) for job_id, status in rows}

    def launches(self) -> dict[str, int]:
        """How many times each job was handed to a worker (its moves to ``dispatched``)."""
        query = (
            sa.select(job_events_table.c.job_id, sa.func.count())
            .where(job_events_table.c.to_status == "dispatched")
            .group_by(job_events_table.c.job_id)
        )
        with transaction(self.engine) as conn:
            return {str(job_id): int(count) for job_id, count in conn.execute(query)}

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def profile_environment(state_dir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a profile on free ports of its own, the caller's PODSCRIBE_* dropped."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PODSCRIBE_", "WHISPER_", "PUBSUB_", "STORAGE_EMULATOR", "AWS_"))
    }
    environment |= {
        "PODSCRIBE_LOCAL_STATE_DIR": str(state_dir),
        "PODSCRIBE_DATABASE_URL": database_url,
        "PODSCRIBE_REDIS_URL": REDIS_URL,
        "PODSCRIBE_PROJECT_ID": f"podscribe-drill-{uuid.uuid4().hex[:6]}",
        "PODSCRIBE_ENV": "local",
        # Counters of its own on the shared Redis: every drill's requests come from 127.0.0.1.
        "PODSCRIBE_RATE_LIMIT_PREFIX": f"drill:{uuid.uuid4().hex[:12]}:",
    }
    for name in PORT_VARIABLES:
        environment[f"PODSCRIBE_LOCAL_{name}_PORT"] = str(free_port())
    return environment | dict(overrides)


@contextmanager
def local_profile(
    tmp_path: Path, *, database_url: str | None = None, **overrides: str
) -> Iterator[Profile]:
    """A profile on a throwaway database (or ``database_url``), taken down afterwards.

    ``up`` is the drill's to call, with the arguments it needs (``--stack selfhosted``...).
    """
    with _database(database_url) as url:
        state_dir = tmp_path / "state"
        profile = Profile(profile_environment(state_dir, url, **overrides), state_dir)
        try:
            yield profile
        finally:
            profile.close()
            profile.run("down")


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with throwaway_database() as created:
        yield created


def by_status(statuses: Mapping[str, str]) -> dict[str, int]:
    """How many jobs are in each status."""
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def first_api_key(output: str) -> str:
    return next(line.split()[-1] for line in output.splitlines() if line.startswith("API key:"))


__all__ = [
    "Profile",
    "by_status",
    "group_rss",
    "local_profile",
    "percentile",
    "profile_environment",
    "wait_for",
]
