"""The local profile's launcher: ``python -m vertex_job --job-id <id>`` as a process here.

Each launch is a detached process group (it outlives a restart of dispatch) wrapped in
``sh -c '...; echo $? > <stem>.exit; [ $? = 0 ] || python -m podscribe.jobs.reaper'`` so that
its exit status survives it (``status`` reads the file, not a ``wait()`` only the parent
could do) and a job process that dies (killed, crashed) is noticed at once: the reaper sweeps,
and the sweep queues the job again for its next attempt. Everything sits in the profile's state
folder::

    <PODSCRIBE_LOCAL_STATE_DIR>/jobs/<job id>-a<attempt>.pid    the process group id
    <PODSCRIBE_LOCAL_STATE_DIR>/jobs/<job id>-a<attempt>.exit   its exit status, once done
    <PODSCRIBE_LOCAL_STATE_DIR>/logs/<job id>-a<attempt>.log    its output

The concurrency cap counts launches with a PID file, no exit file and a live process. Dispatch
holds :meth:`LocalProcessLauncher.exclusive` (a file lock) from its capacity check to the
launch, so two dispatches at once cannot both take the last slot, nor spend an attempt on it.
The child inherits this process's environment (``PODSCRIBE_*``, ``WHISPER_*``): on this
machine it decodes on the CPU with int8 unless told otherwise.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psutil

from podscribe.errors import CapacityError, LaunchError
from podscribe.jobs.launchers import LauncherState, LauncherStatus, LaunchResult
from podscribe.jobs.model import Job
from podscribe.settings import Settings, env_name

log = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 2000


def job_process_alive(pid: int) -> bool:
    """Whether ``pid`` is a job process (``python -m vertex_job``, or its shell) that still runs.

    A finished child of ours is reaped; a PID reused by an unrelated process (after a reboot)
    is not our job, even one whose arguments merely mention ``vertex_job``.
    """
    try:  # a finished child of ours is a zombie until reaped
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        reaped = 0
    if reaped:
        return False
    try:
        process = psutil.Process(pid)
        running = process.status() != psutil.STATUS_ZOMBIE
        command = f" {' '.join(process.cmdline())} "
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; whose it is, we may not ask
    return bool(running) and " -m vertex_job " in command


class LocalProcessLauncher:
    """Runs jobs as processes on this machine, at most ``PODSCRIBE_LOCAL_MAX_JOBS`` at once.

    Args:
        settings: ``local_state_dir`` and ``local_max_jobs`` are read.
        python: the interpreter that runs ``vertex_job`` (default: this one).
        cwd: the working directory of the job (default: this process's), where ``vertex_job``
            is importable.
    """

    name = "local"

    def __init__(
        self, settings: Settings, *, python: str | None = None, cwd: Path | None = None
    ) -> None:
        self._jobs_dir = settings.local_state_dir / "jobs"
        self._logs_dir = settings.local_state_dir / "logs"
        self._max_jobs = settings.local_max_jobs
        self._python = python or sys.executable
        self._cwd = cwd

    def exclusive(self) -> AbstractContextManager[None]:
        """A file lock held from dispatch's capacity check to the launch."""
        return self._locked(".dispatch.lock")

    @contextmanager
    def _locked(self, name: str = ".lock") -> Iterator[None]:
        self._jobs_dir.mkdir(parents=True, exist_ok=True)
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        with (self._jobs_dir / name).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _live(self) -> dict[str, int]:
        """Launch stems whose process still runs, with their PIDs."""
        live: dict[str, int] = {}
        for pid_file in self._jobs_dir.glob("*.pid"):
            if pid_file.with_suffix(".exit").exists():
                continue
            try:
                pid = int(pid_file.read_text(encoding="utf-8").strip())
            except (OSError, ValueError):
                continue
            if job_process_alive(pid):
                live[pid_file.stem] = pid
        return live

    def running(self) -> int:
        """How many local jobs run now."""
        if not self._jobs_dir.exists():
            return 0
        return len(self._live())

    def has_capacity(self) -> bool:
        """Whether fewer than ``PODSCRIBE_LOCAL_MAX_JOBS`` jobs run."""
        return self.running() < self._max_jobs

    def launch(self, job: Job) -> LaunchResult:
        """Start the job's process, unless one of this job already runs (then adopt it).

        Raises:
            CapacityError: the cap is reached.
            LaunchError: the process could not be started.
        """
        stem = f"{job.id}-a{job.attempts}"
        with self._locked():
            live = self._live()
            for running_stem in live:
                if running_stem.startswith(f"{job.id}-a"):
                    return LaunchResult(ref=self._ref(running_stem), adopted=True)
            if len(live) >= self._max_jobs:
                raise CapacityError(
                    f"{len(live)} local job(s) already run; {env_name('local_max_jobs')}="
                    f"{self._max_jobs}"
                )
            pid_file = self._jobs_dir / f"{stem}.pid"
            exit_file = pid_file.with_suffix(".exit")
            log_path = self._logs_dir / f"{stem}.log"
            exit_file.unlink(missing_ok=True)
            command = shlex.join([self._python, "-m", "vertex_job", "--job-id", job.id])
            reap = shlex.join([self._python, "-m", "podscribe.jobs.reaper"])
            # The status first (what ``status`` reads), then, when the job did not exit
            # cleanly, a sweep at once: a killed job is queued again without waiting for
            # its lease to expire.
            script = (
                f"{command}; code=$?; echo $code > {shlex.quote(str(exit_file.resolve()))}; "
                f'[ "$code" -eq 0 ] || {reap}'
            )
            try:
                with log_path.open("ab") as output:
                    process = subprocess.Popen(  # noqa: S603 - fixed argv, no user input
                        ["/bin/sh", "-c", script],
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        cwd=self._cwd,
                        start_new_session=True,
                    )
            except OSError as error:
                raise LaunchError(f"could not start the local job: {error}") from error
            pid_file.write_text(str(process.pid), encoding="utf-8")
        log.info(
            "started a local job process",
            extra={"job_id": job.id, "pid": process.pid, "log_path": str(log_path)},
        )
        return LaunchResult(ref=self._ref(stem), detail=f"pid {process.pid}, log {log_path}")

    def _ref(self, stem: str) -> str:
        return f"local:{stem}"

    def log_path(self, ref: str) -> Path:
        """Where a launch's output goes."""
        return self._logs_dir / f"{ref.removeprefix('local:')}.log"

    def status(self, ref: str) -> LauncherState:
        """Done (by its exit file), running (by its PID) or gone."""
        stem = ref.removeprefix("local:")
        pid_file = self._jobs_dir / f"{stem}.pid"
        exit_file = pid_file.with_suffix(".exit")
        if exit_file.exists():
            text = exit_file.read_text(encoding="utf-8").strip()
            if text == "0":
                return LauncherState(LauncherStatus.SUCCEEDED)
            return LauncherState(
                LauncherStatus.FAILED,
                f"the job process exited with status {text or '?'}: {self._log_tail(ref)}",
            )
        try:
            pid = int(pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return LauncherState(LauncherStatus.UNKNOWN, f"no launch {ref}")
        if job_process_alive(pid):
            return LauncherState(LauncherStatus.RUNNING)
        return LauncherState(
            LauncherStatus.FAILED,
            f"the job process {pid} vanished without an exit status: {self._log_tail(ref)}",
        )

    def _log_tail(self, ref: str) -> str:
        try:
            with self.log_path(ref).open("rb") as output:
                output.seek(0, os.SEEK_END)
                output.seek(max(0, output.tell() - _LOG_TAIL_BYTES))
                lines = output.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "empty log"
