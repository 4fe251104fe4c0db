"""The drills' fixture ``figures`` and the hook that stamps each drill's outcome on them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.drills.figures import Recorder

pytestmark = pytest.mark.slow


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Recorder:
    """``figures(drill, broken, bound)`` -> a row whose ``observed`` the drill fills in."""
    recorder = Recorder()
    request.node.stash[RECORDER] = recorder
    return recorder


RECORDER = pytest.StashKey[Recorder]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    recorder = item.stash.get(RECORDER, None)
    if recorder is not None and (report.when == "call" or report.failed):
        for row in recorder.rows:
            if row.outcome in ("running", "passed"):
                row.outcome = "passed" if report.passed else "failed"
            row.save()
    return report
