"""Background processes that can be stopped completely.

Each process starts in a session (process group) of its own, so stopping it also stops
whatever it spawned: the gcloud Pub/Sub wrapper leaves its Java child running otherwise.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class StartupError(RuntimeError):
    """A part of the local profile did not come up in time; the message names it."""


@dataclass(frozen=True)
class Started:
    """A process we started: its name, PID (= process group id) and log file."""

    name: str
    pid: int
    log_path: Path


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Started:
    """Start ``argv`` in its own process group, output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Started(name=name, pid=process.pid, log_path=log_path)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return _not_zombie(pid)
    return done == 0


def _not_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(
        _not_zombie(int(entry.name)) and _pgid_of(int(entry.name)) == pgid
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
    )


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None


def stop_group(pgid: int, *, grace_seconds: float = 10.0) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            process_alive(pgid)  # reaps our own child if it exited
            if not group_alive(pgid):
                return
            time.sleep(0.1)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str) -> int | None:
    """The status a loopback HTTP endpoint answers with; None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_until(
    what: str, ready: Callable[[], bool], *, timeout: float, started: Started | None = None
) -> None:
    """Poll ``ready`` until it is true.

    Raises:
        StartupError: not ready in ``timeout`` seconds, or the process died; the message names
            ``what`` and points at the log.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if started is not None and not process_alive(started.pid):
            raise StartupError(f"{what} exited during startup; see {started.log_path}")
        time.sleep(0.1)
    hint = f"; see {started.log_path}" if started else ""
    raise StartupError(f"{what} did not answer within {timeout:g}s{hint}")
