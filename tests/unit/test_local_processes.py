"""The local profile's process checks (psutil underneath): alive, its command line, its group."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local_emulators.processes import command_line, group_alive, process_alive, stop_group

_SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_running_child_is_alive_with_its_command_line_and_group() -> None:
    child = subprocess.Popen(_SLEEPER, start_new_session=True)
    try:
        assert process_alive(child.pid)
        assert command_line(child.pid) == _SLEEPER
        assert group_alive(child.pid)
    finally:
        stop_group(child.pid, grace_seconds=5)
    assert not process_alive(child.pid)
    assert not group_alive(child.pid)
    assert command_line(child.pid) == []


def test_an_exited_child_is_reaped_and_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], cwd=tmp_path)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, still a zombie
    assert not process_alive(child.pid)


def test_a_process_that_is_not_our_child_is_judged_by_its_state() -> None:
    assert process_alive(os.getppid())  # not ours to reap: psutil's view decides
    assert not process_alive(2**22 + 1)  # above Linux's pid_max: no such process
