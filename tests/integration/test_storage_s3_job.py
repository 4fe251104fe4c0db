"""A real job on the S3 backend: ``python -m vertex_job`` writes its checkpoint and every
transcript format to moto's S3 server, with the content types the API serves them with.

The same job on Cloud Storage is ``test_vertex_job.py``; this one shares its helpers and
changes only the storage variables the child process gets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode
from podscribe import jobs
from podscribe.settings import load_settings
from podscribe.storage import (
    TRANSCRIPT_FORMATS,
    TranscriptStore,
    checkpoint_object_name,
    transcript_object_name,
)
from podscribe.transcription.formats import Transcript
from tests.fakes.speech import make_episode
from tests.integration.test_vertex_job import (
    REPO,
    SHOW,
    enqueue,
    job_settings,
    read_job,
    settings_environment,
    word_error_rate,
)
from tests.storage_support import s3_environment, s3_overrides

pytestmark = pytest.mark.slow

BUCKET = "podscribe-s3-job-tests"


def test_the_job_command_stores_its_checkpoint_and_transcripts_in_s3(
    engine: Engine, database_url: str, s3_server: str, tmp_path: Path
) -> None:
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET, **s3_overrides(s3_server)))
    store.ensure_bucket()
    path, spoken = make_episode(tmp_path, seconds=45, codec="mp3", seed=1, name="s3")
    episode = FakeEpisode(1000000301, "Buckets Elsewhere", guid="g-s3", audio=path.read_bytes())
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, tmp_path / "work", bucket=BUCKET)
        job_id = enqueue(engine, episode)
        finished = subprocess.run(
            [sys.executable, "-m", "vertex_job", "--job-id", job_id],
            check=False,
            cwd=REPO,
            env={**settings_environment(settings), **s3_environment(s3_server)},
            capture_output=True,
            timeout=300,
        )
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]

    job = read_job(engine, job_id)
    assert job.status is jobs.JobStatus.SUCCEEDED
    assert job.transcript_objects == {
        fmt: transcript_object_name(job_id, fmt) for fmt in TRANSCRIPT_FORMATS
    }
    # 45 s of audio in 30 s windows: a checkpoint went up on the way.
    assert job.checkpoint_object == checkpoint_object_name(job_id)
    checkpoint = Transcript.from_json(store.get(job.checkpoint_object))
    assert checkpoint.segments

    s3 = boto3.session.Session(
        aws_access_key_id="podscribe-test", aws_secret_access_key="test"
    ).client("s3", endpoint_url=s3_server, region_name="us-east-1")
    for fmt, name in job.transcript_objects.items():
        head = s3.head_object(Bucket=BUCKET, Key=name)
        assert head["ContentType"].startswith(TRANSCRIPT_FORMATS[fmt]), (fmt, head)
    transcript = Transcript.from_json(b"".join(store.stream(job.transcript_objects["json"])))
    assert transcript.complete
    assert word_error_rate(spoken, store.get(job.transcript_objects["txt"]).decode()) <= 0.2

    assert store.delete_job_objects(job_id, recorded=job.transcript_objects.values())
    assert not store.exists(job.transcript_objects["json"])
