"""Speaker names per caller, through the real submit app against real services.

``PATCH .../speakers`` names a succeeded job's labels for one key; every format that key
reads renders with them (each read back by its own parser), another key sees its own view,
and a key that submitted with ``"speakers": false`` sees no speaker at all. The feed's
``<podcast:person>`` hosts and guests are offered, never applied.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import srt
from sqlalchemy.engine import Engine

from podscribe.db import transaction
from podscribe.jobs.search import index_transcript
from podscribe.storage import TRANSCRIPT_FORMATS
from tests.integration.speaker_support import (
    CONVERSATION,
    bearer,
    speakers_shown,
    submit,
    succeed_with_speakers,
    succeeded_job,
)
from tests.integration.submit_support import API_KEY, OTHER_KEY, submit_test_client
from tests.integration.test_submit_api import assert_problem


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def rename(client: Any, job_id: str, names: Any, key: str = API_KEY) -> Any:
    return client.patch(
        f"/v1/transcriptions/{job_id}/speakers", json={"names": names}, headers=bearer(key)
    )


def transcript(client: Any, job_id: str, fmt: str, key: str = API_KEY, **query: Any) -> Any:
    return client.get(
        f"/v1/transcriptions/{job_id}/transcript",
        query_string={"format": fmt, **query},
        headers=bearer(key),
    )


def test_the_job_shows_its_labels_and_offers_the_feeds_hosts_and_guests(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    body = client.get(f"/v1/transcriptions/{job_id}", headers=bearer()).get_json()
    assert body["speakers"] == {"enabled": True, "labels": ["S1", "S2"], "names": {}}
    # Offered only: the producer is not heard, and nobody is put on a label.
    assert body["speaker_names"] == [
        {"name": "Ann Example", "role": "host"},
        {"name": "Bob Guest", "role": "guest"},
    ]
    for fmt in TRANSCRIPT_FORMATS:
        assert speakers_shown(fmt, transcript(client, job_id, fmt).get_data(as_text=True)) == {
            "S1",
            "S2",
        }, fmt
    listed = client.get("/v1/transcriptions", headers=bearer()).get_json()["items"]
    assert listed[0]["speakers"]["labels"] == ["S1", "S2"]


def test_renamed_speakers_appear_in_every_format_for_that_key_only(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    assert submit(client, OTHER_KEY).status_code == 200  # the same job, another key
    answer = rename(client, job_id, {"S1": "  Ann Example ", "S2": "Bob & <Co>"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["speakers"]["names"] == {"S1": "Ann Example", "S2": "Bob & <Co>"}
    for fmt in TRANSCRIPT_FORMATS:
        mine = transcript(client, job_id, fmt)
        assert mine.status_code == 200
        assert mine.headers["Cache-Control"] == "private, no-cache"
        shown = speakers_shown(fmt, mine.get_data(as_text=True))
        assert shown == {"Ann Example", "Bob & <Co>"}, fmt
        theirs = transcript(client, job_id, fmt, OTHER_KEY).get_data(as_text=True)
        assert speakers_shown(fmt, theirs) == {"S1", "S2"}, fmt
    # null takes a name away; the other name stays.
    assert rename(client, job_id, {"S2": None}).get_json()["speakers"]["names"] == {
        "S1": "Ann Example"
    }
    vtt = transcript(client, job_id, "vtt").get_data(as_text=True)
    assert speakers_shown("vtt", vtt) == {"Ann Example", "S2"}


def test_a_key_that_turned_speakers_off_sees_none_while_another_key_sees_them(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    # The same key asking again with another value is heard (not answered read-only).
    assert submit(client, OTHER_KEY).status_code == 200
    assert submit(client, OTHER_KEY, speakers=False).get_json()["speakers"]["enabled"] is False
    seen = client.get(f"/v1/transcriptions/{job_id}", headers=bearer(OTHER_KEY)).get_json()
    assert seen["speakers"]["enabled"] is False
    for fmt in TRANSCRIPT_FORMATS:
        off = transcript(client, job_id, fmt, OTHER_KEY).get_data(as_text=True)
        assert speakers_shown(fmt, off) == set(), fmt
        assert "S1" not in off and "S2" not in off, fmt
        on = transcript(client, job_id, fmt).get_data(as_text=True)
        assert speakers_shown(fmt, on) == {"S1", "S2"}, fmt
    assert submit(client, OTHER_KEY, speakers=True).get_json()["speakers"]["enabled"] is True


def test_line_limits_shape_captions_and_bad_ones_are_refused(client: Any, engine: Engine) -> None:
    job_id = succeeded_job(client, engine)
    narrow = transcript(client, job_id, "srt", max_line_chars="20", max_lines="1")
    assert narrow.status_code == 200
    cues = list(srt.parse(narrow.get_data(as_text=True)))
    assert len(cues) > 4
    assert all(len(cue.content.splitlines()) == 1 for cue in cues)
    assert all(len(line) <= 20 for cue in cues for line in cue.content.splitlines())
    assert_problem(
        transcript(client, job_id, "srt", max_line_chars="5"), 422, "invalid_line_limits"
    )
    assert_problem(transcript(client, job_id, "vtt", max_lines="9"), 422, "invalid_line_limits")
    assert_problem(transcript(client, job_id, "vtt", max_lines="two"), 400, "invalid_request")
    assert_problem(transcript(client, job_id, "vtt", max_lines="-1"), 400, "invalid_request")


@pytest.mark.parametrize(
    ("names", "code"),
    [
        ({"S3": "Nobody"}, "unknown_speaker"),
        ({"s1": "Lower case"}, "unknown_speaker"),
        ({"S1": "   "}, "invalid_speaker_name"),
        ({"S1": "x" * 81}, "invalid_speaker_name"),
        ({"S1": "Ann\x07"}, "invalid_speaker_name"),
        ({"S1": "Ann\nExample"}, "invalid_speaker_name"),
        ({"S1": "\u202eelpmaxE nnA"}, "invalid_speaker_name"),
    ],
)
def test_a_bad_rename_is_refused_and_changes_nothing(
    client: Any, engine: Engine, names: dict[str, str], code: str
) -> None:
    job_id = succeeded_job(client, engine)
    assert rename(client, job_id, {"S2": "Bob Guest"}).status_code == 200
    assert_problem(rename(client, job_id, {"S1": "Ann", **names}), 422, code)
    body = client.get(f"/v1/transcriptions/{job_id}", headers=bearer()).get_json()
    assert body["speakers"]["names"] == {"S2": "Bob Guest"}


def test_renames_of_malformed_bodies_unready_or_foreign_jobs_are_refused(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    url = f"/v1/transcriptions/{job_id}/speakers"
    bodies: list[Any] = [[], {"names": []}, {"names": {"S1": 3}}, {"names": {}, "extra": 1}, {}]
    for body in bodies:
        assert_problem(client.patch(url, json=body, headers=bearer()), 400, "invalid_request")
    as_text = client.patch(url, data="names=S1", headers=bearer(), content_type="text/plain")
    assert_problem(as_text, 415, "unsupported_media_type")
    assert_problem(rename(client, job_id, {"S1": "Ann"}, OTHER_KEY), 404, "job_not_found")
    assert_problem(rename(client, "not-a-uuid", {"S1": "Ann"}), 404, "job_not_found")
    queued = submit(client, url="https://podcasts.apple.com/us/podcast/x/id1?i=2").get_json()
    assert_problem(rename(client, queued["id"], {"S1": "Ann"}), 409, "transcript_not_ready")
    assert queued["speakers"] == {"enabled": True, "labels": [], "names": {}}


def test_a_transcript_without_labels_is_served_as_stored(client: Any, engine: Engine) -> None:
    job_id = submit(client).get_json()["id"]
    segments = tuple(replace(segment, speaker=None) for segment in CONVERSATION.segments)
    succeed_with_speakers(engine, job_id, replace(CONVERSATION, segments=segments))
    assert_problem(rename(client, job_id, {"S1": "Ann"}), 422, "unknown_speaker")
    streamed = transcript(client, job_id, "vtt")
    assert streamed.is_streamed and "<v " not in streamed.get_data(as_text=True)


def test_a_new_transcript_of_the_job_forgets_the_names_of_the_old_voices(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    assert rename(client, job_id, {"S1": "Ann Example"}).status_code == 200
    swapped = tuple(
        replace(segment, speaker="S2" if segment.speaker == "S1" else "S1")
        for segment in CONVERSATION.segments
    )
    with transaction(engine) as conn:  # what the success of a new run writes
        index_transcript(conn, job_id, swapped)
    body = client.get(f"/v1/transcriptions/{job_id}", headers=bearer()).get_json()
    assert body["speakers"]["names"] == {}
    assert body["speakers"]["labels"] == ["S2", "S1"]
