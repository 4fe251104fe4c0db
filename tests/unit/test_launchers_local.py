"""The local-process launcher's mechanics: real detached processes, PID and exit files, the cap.

The processes run a small stand-in ``vertex_job`` module (written to a temporary folder that
is their working directory) whose behaviour each test writes down per job: sleep, or exit
with a status. The real ``vertex_job`` runs in ``tests/integration/test_dispatch_local.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from podscribe.errors import CapacityError
from podscribe.jobs import Job
from podscribe.jobs.launchers import LauncherStatus
from podscribe.jobs.launchers.local import LocalProcessLauncher
from podscribe.settings import load_settings
from tests.fakes.jobs import dispatched_job

STAND_IN = """
import pathlib, sys, time
job_id = sys.argv[sys.argv.index("--job-id") + 1]
action, value = pathlib.Path("plans", job_id).read_text().split()
print(f"stand-in job {job_id}: {action} {value}", flush=True)
if action == "sleep":
    time.sleep(float(value))
    sys.exit(0)
sys.exit(int(value))
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "vertex_job").mkdir()
    (tmp_path / "vertex_job" / "__main__.py").write_text(STAND_IN)
    (tmp_path / "plans").mkdir()
    yield tmp_path
    for pid_file in (tmp_path / "state" / "jobs").glob("*.pid"):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def launcher(workdir: Path, max_jobs: int = 1) -> LocalProcessLauncher:
    settings = load_settings(env="test", local_state_dir=workdir / "state", local_max_jobs=max_jobs)
    return LocalProcessLauncher(settings, cwd=workdir)


def plan(workdir: Path, job: Job, action: str, value: str) -> Job:
    (workdir / "plans" / job.id).write_text(f"{action} {value}")
    return job


def wait_for(local: LocalProcessLauncher, ref: str, state: LauncherStatus) -> None:
    deadline = time.monotonic() + 20
    while local.status(ref).state is not state:
        assert time.monotonic() < deadline, local.status(ref)
        time.sleep(0.05)


def test_a_finished_job_reports_success_and_its_log(workdir: Path) -> None:
    local = launcher(workdir)
    job = plan(workdir, dispatched_job(), "exit", "0")
    result = local.launch(job)
    assert result.ref == f"local:{job.id}-a1"
    wait_for(local, result.ref, LauncherStatus.SUCCEEDED)
    assert f"stand-in job {job.id}: exit 0" in local.log_path(result.ref).read_text()
    assert local.running() == 0
    assert local.has_capacity()


def test_a_failing_job_reports_its_status_and_last_log_line(workdir: Path) -> None:
    local = launcher(workdir)
    job = plan(workdir, dispatched_job(), "exit", "3")
    ref = local.launch(job).ref
    wait_for(local, ref, LauncherStatus.FAILED)
    state = local.status(ref)
    assert state.message is not None
    assert "exited with status 3" in state.message
    assert f"stand-in job {job.id}: exit 3" in state.message


def test_the_cap_refuses_a_second_job_and_a_relaunch_adopts_the_live_one(workdir: Path) -> None:
    local = launcher(workdir, max_jobs=1)
    first = plan(workdir, dispatched_job(), "sleep", "30")
    ref = local.launch(first).ref
    wait_for(local, ref, LauncherStatus.RUNNING)
    assert local.running() == 1
    assert not local.has_capacity()
    with pytest.raises(CapacityError, match="PODSCRIBE_LOCAL_MAX_JOBS=1"):
        local.launch(plan(workdir, dispatched_job(), "exit", "0"))
    again = local.launch(Job(**{**first.__dict__, "attempts": 2}))
    assert again.adopted
    assert again.ref == ref


def test_a_killed_process_is_reported_failed(workdir: Path) -> None:
    local = launcher(workdir, max_jobs=2)
    job = plan(workdir, dispatched_job(), "sleep", "30")
    ref = local.launch(job).ref
    wait_for(local, ref, LauncherStatus.RUNNING)
    pid = int((workdir / "state" / "jobs" / f"{job.id}-a1.pid").read_text())
    os.killpg(pid, signal.SIGKILL)  # the whole group: no one left to write the exit status
    wait_for(local, ref, LauncherStatus.FAILED)
    assert "vanished" in (local.status(ref).message or "")
    assert local.running() == 0
    assert local.status("local:nothing-a1").state is LauncherStatus.UNKNOWN


def test_a_stale_pid_file_of_a_reused_pid_is_not_a_running_job(workdir: Path) -> None:
    local = launcher(workdir, max_jobs=1)
    jobs_dir = workdir / "state" / "jobs"
    jobs_dir.mkdir(parents=True)
    # The PID now belongs to an unrelated live process (this test runner).
    (jobs_dir / "stale-a1.pid").write_text(str(os.getpid()))
    assert local.running() == 0
    assert local.has_capacity()
    assert local.status("local:stale-a1").state is LauncherStatus.FAILED
    (jobs_dir / "stale-a1.pid").unlink()  # the teardown must not signal this runner
