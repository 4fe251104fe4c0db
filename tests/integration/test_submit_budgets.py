"""Many callers, one GPU budget: job identity, per-key links and limits, failures that stay.

Through the real submit entry point (functions-framework's test client of
``functions/submit/main.py``) with real PostgreSQL, Redis, the Pub/Sub emulator (a pull
subscription shows every wake-up published: a wake-up is what leads to a launch) and two API
keys, as two users of one deployment would use it.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.jobs import JobStatus, claim_for_dispatch, fail
from podscribe.jobs.budgets import purge_launch_requests
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    episode_url,
    pull_job_ids,
    submit_test_client,
)

SPELLING_A = "https://podcasts.apple.com/us/podcast/show/id1535809341?i=1000651234567&utm_source=a"
SPELLING_B = "podcasts.apple.com/gb/podcast/other-slug/id1535809341?i=1000651234567&mt=2&uo=4"


@pytest.fixture
def pull(environment: dict[str, str], subscription: tuple[str, str]) -> str:
    """The pull subscription on the submit function's topic."""
    return subscription[1]


def client(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    return submit_test_client(monkeypatch, **env)


def post(app: Any, body: dict[str, Any], key: str = API_KEY) -> Any:
    return app.post("/v1/transcriptions", json=body, headers={"Authorization": f"Bearer {key}"})


def get(app: Any, job_id: str, key: str = API_KEY) -> dict[str, Any]:
    response = app.get(f"/v1/transcriptions/{job_id}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return dict(response.get_json())


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = dict(response.get_json(force=True))
    assert body["code"] == code and body["detail"]
    return body


def job_count(engine: Engine) -> int:
    with transaction(engine) as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one())


def test_options_make_their_own_job_and_each_key_sees_its_own_link(
    pull: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    app = client(monkeypatch)
    a_base = post(app, {"url": SPELLING_A, "model": "base.en"})
    assert a_base.status_code == 202
    b_default = post(app, {"url": SPELLING_B}, key=OTHER_KEY)
    assert b_default.status_code == 202
    # Another model is another transcript: its own job, its own launch.
    assert b_default.get_json()["id"] != a_base.get_json()["id"]
    # The same episode and options from another key and spelling: the same job.
    b_base = post(app, {"url": SPELLING_B, "model": "base.en"}, key=OTHER_KEY)
    assert b_base.status_code == 200
    assert b_base.get_json()["id"] == a_base.get_json()["id"]
    # An English-only model asked for English or for nothing makes the same transcript.
    b_english = post(app, {"url": SPELLING_B, "language": "en"}, key=OTHER_KEY)
    assert b_english.get_json()["id"] == b_default.get_json()["id"]
    assert sorted(pull_job_ids(pull)) == sorted(
        [a_base.get_json()["id"], b_default.get_json()["id"]]
    )
    # A language the model cannot transcribe is refused: no job, nothing spent.
    before = job_count(engine)
    problem(post(app, {"url": SPELLING_A, "language": "zz"}), 422, "unsupported_language")
    assert job_count(engine) == before

    shared = a_base.get_json()["id"]
    assert get(app, shared)["source_url"] == SPELLING_A
    assert get(app, shared, key=OTHER_KEY)["source_url"] == SPELLING_B
    listed = app.get("/v1/transcriptions", headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert {item["source_url"] for item in listed.get_json()["items"]} == {SPELLING_B}


def test_a_key_over_its_active_jobs_is_refused_yet_may_join_jobs_others_started(
    pull: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    app = client(monkeypatch, PODSCRIBE_KEY_MAX_ACTIVE_JOBS="2")
    first, second = (post(app, {"url": episode_url(episode_id=n)}) for n in (1, 2))
    assert (first.status_code, second.status_code) == (202, 202)

    refused = post(app, {"url": episode_url(episode_id=3)})

    body = problem(refused, 429, "too_many_active_jobs")
    assert int(refused.headers["Retry-After"]) > 0
    assert "2" in body["detail"]
    assert len(pull_job_ids(pull)) == 2
    # A job that ends frees its slot.
    with transaction(engine) as conn:
        fail(conn, first.get_json()["id"], JobStatus.QUEUED, code="too_long", message="test")
    assert post(app, {"url": episode_url(episode_id=3)}).status_code == 202
    # Joining a job another key started costs no launch: allowed.
    started = post(app, {"url": episode_url(episode_id=4)}, key=OTHER_KEY)
    joined = post(app, {"url": episode_url(episode_id=4)})
    assert joined.status_code == 200
    assert joined.get_json()["id"] == started.get_json()["id"]
    problem(post(app, {"url": episode_url(episode_id=5)}), 429, "too_many_active_jobs")


def test_a_key_past_its_launches_per_hour_waits_as_retry_after_says(
    pull: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    app = client(monkeypatch, PODSCRIBE_KEY_LAUNCHES_PER_HOUR="3")
    accepted = [post(app, {"url": episode_url(episode_id=n)}) for n in (11, 12, 13)]
    assert [r.status_code for r in accepted] == [202, 202, 202]
    # Deleting a job does not give its launch back.
    app.delete(
        f"/v1/transcriptions/{accepted[0].get_json()['id']}",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )

    refused = post(app, {"url": episode_url(episode_id=14)})

    problem(refused, 429, "launch_budget_exhausted")
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    # Another key has a budget of its own.
    assert post(app, {"url": episode_url(episode_id=14)}, key=OTHER_KEY).status_code == 202
    # An hour later the budget is back, and the sweep forgets what no longer counts.
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE key_launch_requests SET requested_at = now() - interval '61 minutes'")
        )
        assert purge_launch_requests(conn) == 4
    assert post(app, {"url": episode_url(episode_id=15)}).status_code == 202


def test_parallel_submissions_of_one_key_cannot_overrun_its_budget(
    pull: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = client(monkeypatch, PODSCRIBE_KEY_LAUNCHES_PER_HOUR="3")
    start = threading.Barrier(10)
    statuses: list[int] = []

    def submit(episode: int) -> None:
        start.wait()
        statuses.append(post(app, {"url": episode_url(episode_id=100 + episode)}).status_code)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [202] * 3 + [429] * 7
    assert len(pull_job_ids(pull)) == 3


def test_an_episode_that_failed_by_its_own_fault_is_answered_with_the_failure_until_the_cool_down(
    pull: str, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    app = client(monkeypatch, PODSCRIBE_FAILED_RETRY_AFTER_SECONDS="3600")
    hopeless = post(app, {"url": episode_url(episode_id=21)}).get_json()["id"]
    flaky = post(app, {"url": episode_url(episode_id=22)}).get_json()["id"]
    with transaction(engine) as conn:
        fail(conn, hopeless, JobStatus.QUEUED, code="episode_not_found", message="test")
        claim_for_dispatch(conn, flaky, lease_seconds=60, max_attempts=3)
        fail(conn, flaky, JobStatus.DISPATCHED, code="attempts_exhausted", message="test")
    pull_job_ids(pull)

    answered = post(app, {"url": episode_url(episode_id=21)}, key=OTHER_KEY)
    retried = post(app, {"url": episode_url(episode_id=22)}, key=OTHER_KEY)

    assert answered.status_code == 200
    assert answered.get_json()["status"] == "failed"
    assert answered.get_json()["error"]["code"] == "episode_not_found"
    # A transient failure is tried again at once, with fresh attempts.
    assert retried.status_code == 202
    assert (retried.get_json()["status"], retried.get_json()["attempts"]) == ("queued", 0)
    assert pull_job_ids(pull) == [flaky]
    # Past the cool-down the hopeless episode is tried again (the feed may have changed).
    with transaction(engine) as conn:
        conn.execute(
            sa.text("UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": uuid.UUID(hopeless)},
        )
    again = post(app, {"url": episode_url(episode_id=21)})
    assert again.status_code == 202
    assert again.get_json()["status"] == "queued"
    assert pull_job_ids(pull) == [hopeless]
