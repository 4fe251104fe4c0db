"""The local profile end to end on ``--stack selfhosted``: Redis Streams wake-ups consumed by
the dispatch consumer, transcripts in moto's S3 server, no Pub/Sub emulator or fake-gcs-server
anywhere; then ``down``, and nothing it started survives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from local_emulators.fixtures import EPISODE
from local_emulators.processes import group_alive
from local_emulators.stacks import wakeup_stream_name
from podscribe.client import PodscribeClient
from podscribe.storage import TRANSCRIPT_FORMATS, transcript_object_name
from tests.integration.test_local_profile import (
    EXPECTED,
    _processes_mentioning,
    _profile_environment,
    _run,
)
from tests.services import REDIS_URL, free_port, throwaway_database


@pytest.fixture
def profile(tmp_path: Path) -> Iterator[dict[str, str]]:
    with throwaway_database() as database_url:
        environment = _profile_environment(tmp_path / "state", database_url)
        environment["PODSCRIBE_LOCAL_S3_PORT"] = str(free_port())
        yield environment
        _run(environment, "down")
        marker = tmp_path / "state" / "instance-id"
        if marker.exists():  # the profile's stream, left in the shared Redis
            with redis.Redis.from_url(REDIS_URL) as client:
                client.delete(wakeup_stream_name(marker.read_text().strip()))


def _s3_keys(environment: dict[str, str], bucket: str) -> set[str]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{environment['PODSCRIBE_LOCAL_S3_PORT']}",
        region_name="us-east-1",
        aws_access_key_id="podscribe-local",
        aws_secret_access_key="podscribe-local-secret",
    )
    listed = client.list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listed.get("Contents", [])}


@pytest.mark.slow
def test_selfhosted_stack_transcribes_through_the_stream_into_s3_and_stops(
    profile: dict[str, str], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    started = _run(profile, "up", "--stack", "selfhosted", "--with-fixtures")
    assert started.returncode == 0, started.stdout + started.stderr
    submit_url = f"http://127.0.0.1:{profile['PODSCRIBE_LOCAL_SUBMIT_PORT']}"
    assert f"submit URL: {submit_url}" in started.stdout
    assert "stack:      selfhosted" in started.stdout
    api_key = next(
        line.split()[-1] for line in started.stdout.splitlines() if line.startswith("API key:")
    )
    state = json.loads((state_dir / "state.json").read_text())
    assert state["stack"] == "selfhosted"
    names = {record["name"] for record in state["processes"]}
    assert {"moto S3 server", "submit", "dispatch", "sweep", "sweep-timer", "fixtures"} <= names
    assert not names & {"pubsub-emulator", "fake-gcs-server"}
    dispatch = next(record for record in state["processes"] if record["name"] == "dispatch")
    assert "podscribe.jobs.stream_consumer" in dispatch["cmdline"]
    # Another stack on the same state folder is refused while this one runs.
    other = _run(profile, "up")
    assert other.returncode == 2 and "--stack selfhosted" in other.stderr

    with PodscribeClient(submit_url, api_key) as client:
        job = client.submit(EPISODE.apple_url)
        done = client.wait(job["id"], timeout=180, interval=0.5)
        assert done["status"] == "succeeded", done
        served = {fmt: client.transcript(job["id"], fmt) for fmt in TRANSCRIPT_FORMATS}
    assert EXPECTED in served["txt"].lower().replace(",", "")
    assert served["vtt"].startswith("WEBVTT")
    assert json.loads(served["json"]) and json.loads(served["podcast-json"])
    assert all(served.values())

    # The transcripts are in moto's bucket; no emulator of Google's ran for this profile.
    keys = _s3_keys(profile, "podscribe-transcripts")
    assert {transcript_object_name(job["id"], fmt) for fmt in TRANSCRIPT_FORMATS} <= keys
    assert not (state_dir / "gcs").exists()
    assert not (state_dir / "pubsub").exists()
    ours = [_cmdline(pid) for pid in _processes_mentioning(str(state_dir))]
    assert not [line for line in ours if "pubsub" in line or "fake-gcs" in line]

    # The wake-up went through this profile's own stream and its consumer group.
    stream = wakeup_stream_name((state_dir / "instance-id").read_text().strip())
    wakeups = redis.Redis.from_url(REDIS_URL)
    try:
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", wakeups.xrange(stream))
        assert job["id"].encode() in {fields[b"job_id"] for _, fields in entries}
        (group,) = wakeups.xinfo_groups(stream)
        assert group["pending"] == 0  # acknowledged after dispatch handled it
    finally:
        wakeups.close()
    consumer_log = Path(dispatch["log"]).read_text()
    assert "wake-up handled" in consumer_log and job["id"] in consumer_log

    status = _run(profile, "status")
    assert status.returncode == 0 and "DOWN" not in status.stdout
    assert "stack:      selfhosted" in status.stdout
    logs = _run(profile, "logs", "dispatch")
    assert "consuming wake-ups" in logs.stdout

    stopped = _run(profile, "down")
    assert stopped.returncode == 0, stopped.stderr
    for record in state["processes"]:
        assert not group_alive(record["pid"]), f"{record['name']} survived `down`"
    assert _processes_mentioning(str(state_dir)) == []


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
