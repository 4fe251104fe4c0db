"""Storage down while a job writes, in the real local profile of each stack: retried, then
failed with a clear code if it never returns; no half-written transcript is ever served.

``--stack gcp`` stores in fake-gcs-server (part ``gcs``), ``--stack selfhosted`` in moto's S3
server (part ``s3``). A loopback Apple stand-in serves about 40 s of real speech; with one
chunk per batch (``WHISPER_BATCH_SIZE=1``) each window is one VAD chunk, so the job writes a
checkpoint after its first window, then the six formats. The part is stopped (SIGTERM of its
process group) once the job row is ``running`` with a checkpoint written: the job's next
write (in practice the transcript's formats) meets the outage.

(a) Storage comes back once the job's log shows it retrying (well within the worker's
    ``RetryPolicy``: 4 tries, 1 s doubling, over the store's own 5): the job ends
    ``succeeded`` and every format served is complete (parsed; its last cue ends with the
    audio), and the bucket holds exactly the job's formats.
(b) Storage never comes back while the job runs (``PODSCRIBE_MAX_ATTEMPTS=2``): the job ends
    ``failed`` with ``storage_failed`` after 2 launches, every format answers a 409 problem
    (never a document), and once storage is back the failed job still serves none and the
    bucket holds no transcript file of it (its checkpoint may stay: a resubmission resumes
    from it, by design, and it is never served for a job that is not running).

moto keeps everything in memory: a restarted moto has lost the bucket, as a MinIO whose
volume was lost would. The product does not create buckets at run time (that is provisioning:
``up`` and the k3s job run ``TranscriptStore.ensure_bucket``; a worker that made an empty
bucket would hide a misnamed one), so the drill re-provisions the bucket as those do, right
after the restart. Until then a write meets "no such bucket", which the store reports as a
transient ``StorageError`` and the worker retries (it used to surface as
``FileNotFoundError``, failing the job as ``internal_error``: fixed in ``storage.py``).
Case (a) on S3 is still meaningful: the outage is retried within the attempt and the
transcript is written whole to the re-provisioned bucket; only the earlier checkpoint is
lost, which an attempt that does not restart never reads.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import srt
import webvtt

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.processes import http_status
from podscribe.client import PodscribeClient
from podscribe.db import transaction
from podscribe.jobs import Job, JobStatus, get_job
from podscribe.settings import load_settings
from podscribe.storage import TRANSCRIPT_FORMATS, TranscriptStore, checkpoint_object_name
from tests.drills.figures import Recorder
from tests.drills.profile_support import Profile, local_profile, wait_for
from tests.fakes.realspeech import build_episode, load_utterances, write_mp3

SHOW = FakeShow(collection_id=4_300_000_021, name="The Outage Hour", artist="podscribe")
BACK_ID, NEVER_ID = 1_000_021, 1_000_022
MAX_ATTEMPTS = 2
BUCKET = "podscribe-transcripts"  # the profile's default PODSCRIBE_BUCKET
PART = {"gcp": "gcs", "selfhosted": "s3"}
"""Each stack's storage, by its port's name (the state file names the process otherwise)."""
END_SLACK_SECONDS = 3.0  # Whisper's last segment may end a little before the audio does
RETRIED = "transient fault; retrying"
ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED)


@pytest.fixture(scope="module")
def episode_audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, float]:
    utterances, chosen, seconds = load_utterances(), [], 0.0
    for utterance in utterances:  # about 40 s: two VAD chunks, so two windows
        chosen.append(utterance)
        seconds += utterance.samples.shape[0] / 16_000 + 1.0
        if seconds > 38:
            break
    episode = build_episode("outage", chosen, seed=21, pauses=(0.5, 1.5))
    assert 30 < episode.seconds < 55, episode.seconds
    return write_mp3(episode, tmp_path_factory.mktemp("outage")).read_bytes(), episode.seconds


@pytest.fixture(scope="module", params=list(PART))
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    episode_audio: tuple[bytes, float],
) -> Iterator[tuple[str, Profile]]:
    """One profile per stack, shared by its two cases (different episodes, so two jobs)."""
    audio, seconds = episode_audio
    episodes = [
        FakeEpisode(episode_id, "An outage", audio=audio, duration_seconds=round(seconds))
        for episode_id in (BACK_ID, NEVER_ID)
    ]
    with (
        FakeApplePodcasts(SHOW, episodes) as apple,
        local_profile(
            tmp_path_factory.mktemp(f"storage-{request.param}"),
            PODSCRIBE_ITUNES_API_BASE=apple.server.base_url,
            PODSCRIBE_APPLE_WEB_BASE=apple.server.base_url,
            PODSCRIBE_SSRF_ALLOW=apple.server.host_port,
            PODSCRIBE_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
            PODSCRIBE_CHECKPOINT_AUDIO_SECONDS="10",
            # Bounded even if a worker hung: the lease lapses and the sweep takes the job back.
            PODSCRIBE_LEASE_SECONDS="60",
            PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS="10",
            # A job the worker requeued (storage still down after its retries) publishes no
            # wake-up: the sweep re-wakes it once it has been queued this long (default 120 s).
            PODSCRIBE_REQUEUE_AFTER_SECONDS="15",
            # One chunk (up to 30 s of speech) per batch: a window, and a checkpoint, per chunk.
            WHISPER_BATCH_SIZE="1",
            # The shared Redis counts every helper's requests from 127.0.0.1: a budget of its own.
            PODSCRIBE_RATE_LIMIT_PREFIX=f"podscribe:rl:storage-{uuid.uuid4().hex[:8]}:",
        ) as profile,
    ):
        profile.up("--stack", request.param)
        yield request.param, profile


def link(episode_id: int) -> str:
    return f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}?i={episode_id}"


def storage_url(profile: Profile, part: str) -> str:
    return f"http://127.0.0.1:{profile.port(part)}"


def process_name(profile: Profile, part: str) -> str:
    """The state file's name of the process listening on the part's port."""
    [record] = [r for r in profile.state().processes if r.port == profile.port(part)]
    return record.name


def storage_ready(profile: Profile, part: str) -> bool:
    probe = "/storage/v1/b" if part == "gcs" else "/moto-api/"
    return http_status(storage_url(profile, part) + probe) == 200


def bring_back(profile: Profile, part: str) -> None:
    """Restart the storage part; on S3, provision the bucket again, as ``up`` does."""
    profile.restart(process_name(profile, part), lambda: storage_ready(profile, part))
    if part == "s3":
        TranscriptStore(
            load_settings(
                storage_backend="s3",
                s3_endpoint_url=storage_url(profile, part),
                aws_access_key_id="podscribe-local",
                aws_secret_access_key="podscribe-local-secret",
            )
        ).ensure_bucket()


def stored_names(profile: Profile, part: str, job_id: str) -> list[str]:
    """The job's objects in the bucket, listed through the emulator's own HTTP API."""
    prefix, url = f"transcripts/{job_id}/", storage_url(profile, part)
    if part == "gcs":
        answer = httpx.get(f"{url}/storage/v1/b/{BUCKET}/o", params={"prefix": prefix})
        answer.raise_for_status()
        return sorted(item["name"] for item in answer.json().get("items", []))
    answer = httpx.get(f"{url}/{BUCKET}", params={"list-type": "2", "prefix": prefix})
    answer.raise_for_status()
    return sorted(re.findall(r"<Key>([^<]*)</Key>", answer.text))


def job_row(profile: Profile, job_id: str) -> Job:
    with transaction(profile.engine) as conn:
        return get_job(conn, job_id)


def retries(profile: Profile, job_id: str) -> list[str]:
    """The steps the job's attempts logged a storage retry for (one item per retry)."""
    steps = []
    for log in sorted((profile.state_dir / "logs").glob(f"{job_id}-a*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if RETRIED in line:
                try:
                    steps.append(str(json.loads(line).get("step")))
                except ValueError:
                    steps.append("?")
    return steps


def missing_bucket_retries(profile: Profile, job_id: str) -> int:
    """Retries that met a storage server up but without its bucket (moto just restarted)."""
    return sum(
        "bucket does not exist" in line
        for log in (profile.state_dir / "logs").glob(f"{job_id}-a*.log")
        for line in log.read_text(errors="replace").splitlines()
        if RETRIED in line
    )


def stop_after_a_checkpoint(profile: Profile, part: str, job_id: str) -> Job:
    """Wait until the job runs with a checkpoint written, then stop storage under it."""

    def checkpointed() -> Job | None:
        row = job_row(profile, job_id)
        assert row.status not in ENDED, f"the job ended before a checkpoint: {row.status}"
        return row if row.status is JobStatus.RUNNING and row.checkpoint_object else None

    running = wait_for(
        "the running job's first checkpoint", checkpointed, timeout=240, interval=0.05
    )
    profile.stop(process_name(profile, part))
    return running


def complete(fmt: str, body: str, seconds: float) -> bool:
    """Whether a served transcript is whole: it parses and its last cue ends with the audio."""
    try:
        if fmt == "json":
            document = json.loads(body)
            last = float(document["segments"][-1]["end"])
            return document.get("complete", True) is True and last > seconds - END_SLACK_SECONDS
        if fmt == "podcast-json":
            last = float(json.loads(body)["segments"][-1]["endTime"])
        elif fmt == "srt":
            last = list(srt.parse(body))[-1].end.total_seconds()
        elif fmt == "vtt":
            last = webvtt.from_string(body).captions[-1].end_in_seconds
        elif fmt == "html":
            return body.rstrip().endswith("</html>") and "<body" in body
        else:
            return bool(body.strip())
    except (ValueError, KeyError, IndexError, TypeError, srt.SRTParseError):
        return False
    return last > seconds - END_SLACK_SECONDS


def served(client: httpx.Client, job_id: str, fmt: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET .../transcript?format=fmt."""
    answer = client.get(f"/v1/transcriptions/{job_id}/transcript", params={"format": fmt})
    return answer.status_code, answer.headers.get("content-type", ""), answer.text


def refusals(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """Every format (and the partial one) of a job that must serve none: status and code."""
    answers: dict[str, Any] = {}
    for fmt in [*TRANSCRIPT_FORMATS, "partial"]:
        params = {"format": "json", "partial": "true"} if fmt == "partial" else {"format": fmt}
        answer = client.get(f"/v1/transcriptions/{job_id}/transcript", params=params)
        problem = answer.headers.get("content-type", "").startswith("application/problem+json")
        answers[fmt] = (answer.status_code, answer.json().get("code") if problem else None)
    return answers


def api(profile: Profile) -> httpx.Client:
    headers = {"Authorization": f"Bearer {profile.api_key}"}
    return httpx.Client(base_url=profile.submit_url, headers=headers, timeout=30)


def test_storage_back_within_the_retry_window_and_the_job_succeeds_whole(
    stack: tuple[str, Profile], episode_audio: tuple[bytes, float], figures: Recorder
) -> None:
    name, profile = stack
    part, seconds = PART[name], episode_audio[1]
    row = figures(
        f"Storage down while a job writes, back ({part})",
        f"`{part}` stopped once the job had checkpointed; restarted once the job logged a "
        "retry" + (" (moto restarts empty: bucket re-provisioned)" if part == "s3" else ""),
        bound="succeeded, every format complete, half-written 0",
    )
    with PodscribeClient(profile.submit_url, profile.api_key) as client, api(profile) as http:
        job_id = client.submit(link(BACK_ID))["id"]
        stopped = stop_after_a_checkpoint(profile, part, job_id)
        began = time.monotonic()
        wait_for(
            "a storage retry in the job's log, or its end",
            lambda: retries(profile, job_id) or job_row(profile, job_id).status in ENDED,
            timeout=120,
        )
        bring_back(profile, part)
        down_seconds = time.monotonic() - began
        done = client.wait(job_id, timeout=240, interval=1.0)
        formats = list((done.get("links") or {}).get("transcripts") or TRANSCRIPT_FORMATS)
        answers = {fmt: served(http, job_id, fmt) for fmt in formats}
    whole = [
        fmt
        for fmt, (status, _, body) in answers.items()
        if status == 200 and complete(fmt, body, seconds)
    ]
    names = stored_names(profile, part, job_id)
    steps = retries(profile, job_id)
    row.observed.update(
        {
            "stopped after checkpoint": bool(stopped.checkpoint_object),
            "storage down s": round(down_seconds, 1),
            "outcome": done["status"],
            "attempts": done["attempts"],
            "retries in job log": len(steps),
            "retried steps": sorted(set(steps)),
            "retries on a missing bucket": missing_bucket_retries(profile, job_id),
            "formats checked": len(formats),
            "formats complete": len(whole),
            "half-written": len(formats) - len(whole),
            "objects stored": len(names),
        }
    )
    row.save()
    assert stopped.status is JobStatus.RUNNING and stopped.checkpoint_object
    assert steps, "the job never met the outage"
    assert done["status"] == "succeeded", done
    assert 1 <= done["attempts"] <= MAX_ATTEMPTS
    assert sorted(formats) == sorted(TRANSCRIPT_FORMATS)
    assert whole == formats, {fmt: answers[fmt][:2] for fmt in formats if fmt not in whole}
    transcript_names = {n for n in names if n != checkpoint_object_name(job_id)}
    assert len(transcript_names) == len(TRANSCRIPT_FORMATS), names


def test_storage_never_back_fails_the_job_with_storage_failed_and_serves_nothing(
    stack: tuple[str, Profile], figures: Recorder
) -> None:
    name, profile = stack
    part = PART[name]
    row = figures(
        f"Storage down while a job writes, never back ({part})",
        f"`{part}` stopped once the job had checkpointed, restarted only after the job ended "
        f"(PODSCRIBE_MAX_ATTEMPTS={MAX_ATTEMPTS})",
        bound=f"failed, code storage_failed, {MAX_ATTEMPTS} launches, every format 409, "
        "half-written 0",
    )
    with PodscribeClient(profile.submit_url, profile.api_key) as client, api(profile) as http:
        job_id = client.submit(link(NEVER_ID))["id"]
        stopped = stop_after_a_checkpoint(profile, part, job_id)
        began = time.monotonic()
        done = client.wait(job_id, timeout=300, interval=1.0)
        to_fail_seconds = time.monotonic() - began
        while_down = refusals(http, job_id)
        bring_back(profile, part)
        once_back = refusals(http, job_id)
        after = client.get(job_id)
    names = stored_names(profile, part, job_id)
    transcripts = [n for n in names if n != checkpoint_object_name(job_id)]
    steps = retries(profile, job_id)
    served_documents = [
        fmt
        for fmt, (status, code) in [*while_down.items(), *once_back.items()]
        if status == 200 or code is None
    ]
    row.observed.update(
        {
            "stopped after checkpoint": bool(stopped.checkpoint_object),
            "outcome": done["status"],
            "code": (done.get("error") or {}).get("code"),
            "attempts": done["attempts"],
            "launches": profile.launches().get(job_id, 0),
            "seconds to failed": round(to_fail_seconds, 1),
            "retries in job log": len(steps),
            "retried steps": sorted(set(steps)),
            "formats checked": len(while_down) + len(once_back),
            "answers": sorted({f"{status} {code}" for status, code in while_down.values()}),
            "half-written": len(served_documents),
            "transcript objects stored": len(transcripts),
            "checkpoint kept": checkpoint_object_name(job_id) in names,
        }
    )
    row.save()
    assert stopped.status is JobStatus.RUNNING and stopped.checkpoint_object
    assert done["status"] == "failed", done
    assert (done.get("error") or {}).get("code") == "storage_failed", done
    assert done["attempts"] == MAX_ATTEMPTS
    assert profile.launches()[job_id] == MAX_ATTEMPTS
    assert len(steps) >= MAX_ATTEMPTS  # each attempt retried before giving up
    assert served_documents == []
    assert {answer for answer in [*while_down.values(), *once_back.values()]} == {
        (409, "transcript_not_ready")
    }
    assert after["status"] == "failed"  # storage back changes nothing for the failed job
    assert transcripts == []
