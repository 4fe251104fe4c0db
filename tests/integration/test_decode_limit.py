"""The longest episode holds while decoding: hours of Opus stop at the limit, in memory too.

A job runs in a child process (:mod:`tests.integration.job_child`) on a WebM served over
loopback that decodes to seven hours but declares no duration, or declares five minutes. It
must fail ``too_long`` with its peak RSS near what the limit's samples take (64 KB a second of
16 kHz float32) over the model's baseline, far below the whole file's 1.6 GB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode
from podscribe import jobs
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore
from tests.fakes.long_opus import make_long_opus
from tests.integration.test_vertex_job import (
    BUCKET,
    SHOW,
    enqueue,
    job_settings,
    read_job,
    settings_environment,
)

ROOT = Path(__file__).resolve().parents[2]
LIMIT_SECONDS = 600
LIMIT_MB = LIMIT_SECONDS * 16_000 * 4 / 2**20  # 36.6 MB of float32 samples
# Over the samples: a group of frames being resampled (about ten seconds), PyAV's and the
# allocator's slack, the job's threads. Decoding all seven hours would take 1.6 GB or more.
ALLOWED_OVER_BASELINE_MB = LIMIT_MB + 60
HOURS = 7


@pytest.fixture
def store(gcs_emulator: str) -> TranscriptStore:
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    return store


@pytest.fixture(scope="module")
def seven_hours(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("opus") / "seven-hours.webm"
    return make_long_opus(path, HOURS * 3600, declared_seconds=None).read_bytes()


@pytest.fixture(scope="module")
def two_hours_said_five_minutes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("opus") / "two-hours.webm"
    return make_long_opus(path, 2 * 3600, declared_seconds=300).read_bytes()


@pytest.mark.usefixtures("store")
@pytest.mark.parametrize("fixture", ["seven_hours", "two_hours_said_five_minutes"])
def test_a_long_episode_stops_decoding_at_the_limit_in_memory_too(
    engine: Engine, database_url: str, tmp_path: Path, fixture: str, request: pytest.FixtureRequest
):
    audio: bytes = request.getfixturevalue(fixture)
    assert len(audio) < 15 * 2**20  # a small download: only decoding tells its length
    episode = FakeEpisode(2000000101, f"Marathon, {fixture}", audio=audio, duration_seconds=240)
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, tmp_path / "work")
        job_id = enqueue(engine, episode)
        environment = {
            **settings_environment(settings),
            "PODSCRIBE_MAX_EPISODE_SECONDS": str(LIMIT_SECONDS),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),  # this tree's code
        }
        spec = {"job_id": job_id, "kill_over_baseline_mb": 3 * ALLOWED_OVER_BASELINE_MB}
        child = subprocess.run(
            [sys.executable, "-m", "tests.integration.job_child", json.dumps(spec)],
            check=False,
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
    reports = [line for line in child.stdout.splitlines() if line.startswith('{"exit"')]
    assert reports, (child.returncode, child.stdout[-3000:], child.stderr[-3000:])
    report = json.loads(reports[-1])
    job = read_job(engine, job_id)
    assert (job.status, job.error_code, report["exit"]) == (jobs.JobStatus.FAILED, "too_long", 1)
    grown = report["peak_mb"] - report["baseline_mb"]
    assert grown < ALLOWED_OVER_BASELINE_MB, report
    assert not (tmp_path / "work").exists() or list((tmp_path / "work").iterdir()) == []
