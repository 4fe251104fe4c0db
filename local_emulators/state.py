"""The local profile's state folder: what ``up`` started, and the secrets it made.

Everything ``up`` starts is recorded in ``<state dir>/state.json`` (name, PID = process
group, the command line, log file), so ``down`` stops exactly that, also after a crash. A PID
is only trusted while its command line still matches what we started: a recycled PID is never
killed. The folder and its files are owner-only: they hold the API key, the database URL and
the webhook secret.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local_emulators.processes import Started, command_line, process_alive
from podscribe.settings import LocalProfileSettings, Settings


@dataclass
class ProcessRecord:
    name: str
    pid: int
    log: str
    cmdline: list[str]
    port: int | None = None


@dataclass
class ProfileState:
    """What ``up`` started and how to reach it."""

    submit_url: str
    api_key: str
    database_url: str
    redis_url: str | None
    project_id: str
    with_fixtures: bool
    processes: list[ProcessRecord] = field(default_factory=list)
    stack: str = "gcp"
    """Which stack runs (:mod:`local_emulators.stacks`); state files from before had only gcp."""

    @classmethod
    def load(cls, path: Path) -> ProfileState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["processes"] = [ProcessRecord(**record) for record in data.get("processes", [])]
        return cls(**data)

    def save(self, path: Path) -> None:
        temporary = path.with_suffix(".tmp")
        write_private(temporary, json.dumps(asdict(self), indent=2))
        temporary.replace(path)


def private_dir(path: Path) -> Path:
    """Create ``path`` if needed and make it owner-only (0700).

    The state folder holds the API key, the database URL and the webhook secret: nobody else
    on the machine may list or read it. A folder someone else owns is left alone.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid():
        path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to an owner-only (0600) file in an owner-only folder.

    The file is created 0600 (never briefly world-readable), and an existing one is brought
    to 0600 too (state files written by older versions were 0644).
    """
    private_dir(path.parent)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)


def state_dir(settings: LocalProfileSettings) -> Path:
    return settings.local_state_dir.resolve()


def webhook_secret_path(settings: Settings) -> Path:
    """Where the local profile keeps the webhook signing secret it made."""
    return state_dir(settings) / "webhook-secret"


def state_path(settings: Settings) -> Path:
    return state_dir(settings) / "state.json"


def record_alive(record: ProcessRecord) -> bool:
    """Alive, and still the process we started (not a recycled PID).

    The recorded command must appear in the live one: a script's interpreter may stand in
    front of it (``python3 functions-framework ...``).
    """
    if not process_alive(record.pid):
        return False
    actual, expected = command_line(record.pid), record.cmdline[:4]
    return any(actual[i : i + len(expected)] == expected for i in range(len(actual)))


def process_record(started: Started, argv: list[str], port: int | None) -> ProcessRecord:
    """What the state file keeps of a process we started."""
    return ProcessRecord(
        name=started.name, pid=started.pid, log=str(started.log_path), cmdline=argv, port=port
    )


def kept_secret(path: Path, *, prefix: str = "") -> str:
    """A random secret made once per state folder and kept there (owner-only), then reused."""
    if path.exists():
        path.chmod(0o600)
        return path.read_text().strip()
    value = prefix + secrets.token_urlsafe(24)
    write_private(path, value)
    return value


def instance_id(directory: Path) -> str:
    """A random id of this state folder, made once and kept in it (names its database and
    wake-up stream, so two profiles never share either)."""
    marker = directory / "instance-id"
    if not marker.exists():
        write_private(marker, secrets.token_hex(4))
    return marker.read_text().strip()
