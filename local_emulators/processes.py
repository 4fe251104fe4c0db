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

import psutil


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
    """Whether ``pid`` still runs; a child of ours that exited is reaped, not counted."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        done = 0  # not our child: only its state tells
    if done:
        return False
    return _running(pid)


def _running(pid: int) -> bool:
    try:
        state: str = psutil.Process(pid).status()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return bool(state != psutil.STATUS_ZOMBIE)


def command_line(pid: int) -> list[str]:
    """The arguments ``pid`` runs with; empty when it is gone or not ours to read."""
    try:
        arguments: list[str] = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return arguments


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and _running(process.pid):
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


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
