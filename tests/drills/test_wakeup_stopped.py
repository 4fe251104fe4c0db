"""The wake-up carrier stopped during submissions, in the real local profile of each stack:
every job stays queued while it is down, and is launched exactly once when it is back.

``--stack gcp`` carries wake-ups on the Pub/Sub emulator (part ``pubsub-emulator``), ``--stack
selfhosted`` on a Redis stream (part ``redis``: the profile is given a Redis URL where nothing
listens, so ``up`` starts a redis-server of its own; the machine's Redis is never stopped).
The part is stopped, then jobs are submitted from a few client threads: each answer is 202
(the row is written first; the failed publish only costs the wake-up), and while the part
stays down no job leaves ``queued`` though the sweep keeps trying to re-wake them.

The part is started again as it would come back in production. Both come back empty: the
emulator keeps nothing, and the private redis-server keeps nothing on disk. Pub/Sub's topics
and subscriptions are then made again, as provisioning (``up``, Terraform) makes them; the
stream and its consumer group are the consumer's own to make again (a Redis that lost its
data answers NOGROUP: the consumer used to log "Redis unavailable" forever and dispatch
nothing; fixed in ``stream_consumer.py``). The sweep (every 3 s here) re-wakes each queued job;
several wake-ups may reach dispatch for one job, and each job is still launched exactly once
(counted as its moves to ``dispatched``) and ends ``succeeded`` on attempt 1.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode, FakeShow
from local_emulators.processes import http_status
from local_emulators.services import redis_answers
from tests.drills.figures import Recorder
from tests.drills.profile_support import ROOT, Profile, by_status, local_profile, wait_for
from tests.fakes.realspeech import build_episode, load_utterances, write_mp3
from tests.services import free_port

SHOW = FakeShow(collection_id=4_300_000_041, name="The Wake-up Hour", artist="podscribe")
FIRST_ID = 1_000_410
JOBS = 10
DUPLICATES = 4  # links submitted a second time during the outage: 200, the same job
CLIENTS = 4
PART = {"gcp": "pubsub-emulator", "selfhosted": "redis"}  # names in state.json
ENDED = ("succeeded", "failed")
RECREATE = (
    "import sys; from local_emulators.topics import create_pubsub_resources; "
    "from podscribe.settings import load_settings; "
    "create_pubsub_resources(load_settings(), int(sys.argv[1]), int(sys.argv[2]))"
)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, float]:
    # Two utterances: a few seconds of speech, transcribed in seconds; the job succeeds.
    episode = build_episode("wakeup", list(load_utterances()[:2]), seed=41, pauses=(0.5, 1.0))
    assert episode.seconds < 30, episode.seconds
    return write_mp3(episode, tmp_path_factory.mktemp("wakeup")).read_bytes(), episode.seconds


@pytest.fixture(params=list(PART))
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, audio: tuple[bytes, float]
) -> Iterator[tuple[str, Profile]]:
    data, seconds = audio
    episodes = [
        FakeEpisode(FIRST_ID + n, "A wake-up", audio=data, duration_seconds=round(seconds) or 1)
        for n in range(JOBS)
    ]
    extra: dict[str, str] = {}
    if request.param == "selfhosted":
        port = free_port()  # nothing listens there: ``up`` starts a redis-server on it
        extra = {
            "PODSCRIBE_REDIS_URL": f"redis://127.0.0.1:{port}/0",
            "PODSCRIBE_LOCAL_REDIS_PORT": str(port),
        }
    with (
        FakeApplePodcasts(SHOW, episodes) as apple,
        local_profile(
            tmp_path,
            PODSCRIBE_ITUNES_API_BASE=apple.server.base_url,
            PODSCRIBE_APPLE_WEB_BASE=apple.server.base_url,
            PODSCRIBE_SSRF_ALLOW=apple.server.host_port,
            PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS="3",
            PODSCRIBE_REQUEUE_AFTER_SECONDS="4",
            PODSCRIBE_PUBLISH_TIMEOUT_SECONDS="2",
            PODSCRIBE_LOCAL_MAX_JOBS="2",
            WHISPER_BATCH_SIZE="2",
            PODSCRIBE_RATE_LIMIT_PER_KEY="100000",
            PODSCRIBE_RATE_LIMIT_PER_IP="100000",
            PODSCRIBE_KEY_MAX_ACTIVE_JOBS="100",  # every job of the drill active at once
            PODSCRIBE_KEY_LAUNCHES_PER_HOUR="1000",
            **extra,
        ) as profile,
    ):
        profile.up("--stack", request.param)
        if request.param == "selfhosted":
            assert profile.record("redis").port == int(extra["PODSCRIBE_LOCAL_REDIS_PORT"])
        yield request.param, profile


def link(episode_id: int) -> str:
    return f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}?i={episode_id}"


def submit_all(profile: Profile, links: list[str]) -> list[tuple[str, int, str | None]]:
    """Each link submitted once, ``CLIENTS`` at a time: (link, status, job id or the
    problem's code)."""
    headers = {"Authorization": f"Bearer {profile.api_key}"}

    def one(target: str) -> tuple[str, int, str | None]:
        with httpx.Client(base_url=profile.submit_url, headers=headers, timeout=60) as http:
            answer = http.post("/v1/transcriptions", json={"url": target})
        body = answer.json()
        return (
            target,
            answer.status_code,
            body.get("id") if answer.status_code < 300 else body.get("code"),
        )

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, links))


def bring_back(name: str, profile: Profile) -> None:
    """Start the part again and provision what it lost, as production would."""
    if name == "pubsub-emulator":
        address = f"http://127.0.0.1:{profile.port('pubsub')}/"
        profile.restart(name, lambda: http_status(address) == 200)
        made = subprocess.run(
            [
                sys.executable,
                "-c",
                RECREATE,
                str(profile.port("dispatch")),
                str(profile.port("sweep")),
            ],
            env=profile._part_environment(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
    else:
        url = profile.state().redis_url
        assert url is not None
        profile.restart("redis", lambda: redis_answers(url))


def test_wakeups_stopped_jobs_stay_queued_and_launch_once(
    stack: tuple[str, Profile], figures: Recorder
) -> None:
    name, profile = stack
    part = PART[name]
    carrier = "the Pub/Sub emulator" if name == "gcp" else "the Redis of the wake-up stream"
    again = "topics made again" if name == "gcp" else "the consumer makes its group again"
    row = figures(
        f"Wake-ups stopped ({name})",
        f"{carrier} (part `{part}`) stopped, {JOBS} jobs submitted from {CLIENTS} clients "
        f"(+{DUPLICATES} duplicates), then started again empty ({again})",
        bound="every submission 202/200, all queued while down, each launched exactly once, 0 lost",
    )
    links = [link(FIRST_ID + n) for n in range(JOBS)]
    profile.stop(part)
    began = time.monotonic()
    answers = submit_all(profile, links + links[:DUPLICATES])
    submit_seconds = time.monotonic() - began
    ids = {job_id for _, status, job_id in answers if job_id and status < 300}
    # Long enough for several sweeps to try (and fail) to re-wake them.
    time.sleep(10)
    while_down = profile.statuses()
    launched_while_down = profile.launches()
    bring_back(part, profile)

    def ended() -> dict[str, str] | None:
        found = profile.statuses()
        return found if len(found) >= len(ids) and all(s in ENDED for s in found.values()) else None

    back = time.monotonic()
    outcome = wait_for("every job ended", ended, timeout=360, interval=1)
    launches = profile.launches()
    counts = [launches.get(job_id, 0) for job_id in ids]
    row.observed.update(
        {
            "submitted": len(answers),
            "202 during outage": sum(status == 202 for _, status, _ in answers),
            "200 (duplicates)": sum(status == 200 for _, status, _ in answers),
            "other answers": sum(status not in (200, 202) for _, status, _ in answers),
            "submit s": round(submit_seconds, 1),
            "queued while down": sum(while_down.get(job_id) == "queued" for job_id in ids),
            "launched while down": sum(launched_while_down.values()),
            "launched once": counts.count(1),
            "launched twice or more": sum(count > 1 for count in counts),
            "lost": len(ids - set(outcome)) + counts.count(0),
            "job outcomes": by_status(outcome),
            "all ended s after back": round(time.monotonic() - back, 1),
        }
    )
    row.save()
    assert [status for _, status, _ in answers] == [202] * JOBS + [200] * DUPLICATES, answers
    assert len(ids) == JOBS
    duplicate_ids = [job_id for _, _, job_id in answers[JOBS:]]
    assert duplicate_ids == [job_id for _, _, job_id in answers[:DUPLICATES]]
    assert all(while_down.get(job_id) == "queued" for job_id in ids), while_down
    assert not launched_while_down, launched_while_down
    assert counts == [1] * JOBS, launches
    assert set(outcome) == ids
    assert set(outcome.values()) == {"succeeded"}, outcome
