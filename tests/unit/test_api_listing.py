"""The list query and its cursor: opaque, URL-safe, tied to the filter it was made under."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from podscribe.api.listing import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    ListQuery,
    decode_cursor,
    encode_cursor,
    parse_list_query,
)
from podscribe.api.openapi import openapi_document
from podscribe.errors import InvalidRequestError
from podscribe.jobs import JobStatus, ListPosition

POSITION = ListPosition(
    created_at=datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC),
    job_id=uuid.UUID("6f1d0f0e-5b1e-4a8e-9a57-0d2b4a8f3c11"),
)


def _raw(document: object) -> str:
    text = json.dumps(document).encode("utf-8")
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode("ascii")


@pytest.mark.parametrize("status", [None, *JobStatus])
def test_a_cursor_round_trips_under_its_own_filter(status: JobStatus | None) -> None:
    cursor = encode_cursor(POSITION, status)
    assert re.fullmatch(CURSOR_PATTERN, cursor), "URL-safe, unpadded, within the pattern"
    assert decode_cursor(cursor, status) == POSITION


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    offset=st.integers(min_value=-12 * 60, max_value=14 * 60),
    job_id=st.uuids(),
    status=st.none() | st.sampled_from(list(JobStatus)),
)
def test_every_position_survives_the_codec_to_the_microsecond(
    moment: datetime, offset: int, job_id: uuid.UUID, status: JobStatus | None
) -> None:
    position = ListPosition(moment.astimezone(timezone(timedelta(minutes=offset))), job_id)
    decoded = decode_cursor(encode_cursor(position, status), status)
    assert decoded == position
    assert decoded.created_at.utcoffset() == position.created_at.utcoffset()


@pytest.mark.parametrize(
    ("made_for", "used_with"),
    [(None, JobStatus.QUEUED), (JobStatus.QUEUED, None), (JobStatus.FAILED, JobStatus.QUEUED)],
)
def test_a_cursor_used_with_another_filter_is_refused(
    made_for: JobStatus | None, used_with: JobStatus | None
) -> None:
    with pytest.raises(InvalidRequestError, match="this cursor was made for"):
        decode_cursor(encode_cursor(POSITION, made_for), used_with)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "abc=",
        "A" * 513,
        "%%%",
        _raw("a string"),
        _raw([1, 2]),
        _raw({"v": 2, "t": POSITION.created_at.isoformat(), "id": str(POSITION.job_id)}),
        _raw({"v": 1, "t": "yesterday", "id": str(POSITION.job_id), "s": None}),
        _raw({"v": 1, "t": "2026-03-01T12:30:45", "id": str(POSITION.job_id), "s": None}),
        _raw({"v": 1, "t": POSITION.created_at.isoformat(), "id": "x", "s": None}),
        _raw({"v": 1, "id": str(POSITION.job_id), "s": None}),
        _raw({"v": 1, "t": POSITION.created_at.isoformat(), "id": str(POSITION.job_id), "s": 5}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
    ],
)
def test_what_this_api_did_not_write_is_not_a_cursor(cursor: str) -> None:
    with pytest.raises(InvalidRequestError, match="cursor"):
        decode_cursor(cursor, None)


def test_the_query_defaults_to_the_first_page_of_everything() -> None:
    assert parse_list_query(MultiDict()) == ListQuery(None, DEFAULT_LIMIT, None)


def test_the_query_reads_status_limit_and_cursor() -> None:
    cursor = encode_cursor(POSITION, JobStatus.RUNNING)
    args = MultiDict({"status": "running", "limit": str(MAX_LIMIT), "cursor": cursor})
    assert parse_list_query(args) == ListQuery(JobStatus.RUNNING, MAX_LIMIT, POSITION)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"limit": "0"}, "limit must be an integer from 1 to 100"),
        ({"limit": "101"}, "limit must be"),
        ({"limit": " 5"}, "limit must be"),
        ({"limit": "5_0"}, "limit must be"),
        ({"limit": "+5"}, "limit must be"),
        ({"limit": "1e2"}, "limit must be"),
        ({"status": "done"}, "status must be one of queued, dispatched"),
        ({"status": "Queued"}, "status must be"),
        ({"cursor": "?"}, "cursor is not one this API gave out"),
    ],
)
def test_bad_values_are_invalid_requests(args: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=re.escape(message)):
        parse_list_query(MultiDict(args))


@pytest.mark.parametrize("name", ["status", "limit", "cursor"])
def test_a_parameter_given_twice_is_refused(name: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"{name} may be given once"):
        parse_list_query(MultiDict([(name, "1"), (name, "2")]))


def test_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="unknown query parameter"):
        parse_list_query(MultiDict({"state": "queued"}))


def test_the_document_describes_listing_and_deleting() -> None:
    paths = openapi_document("https://api.example.com")["paths"]
    listing = paths["/v1/transcriptions"]["get"]
    assert listing["operationId"] == "listTranscriptions"
    parameters = {parameter["name"]: parameter["schema"] for parameter in listing["parameters"]}
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    assert parameters["status"]["enum"] == [status.value for status in JobStatus]
    assert parameters["cursor"]["pattern"] == CURSOR_PATTERN
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobList"
    }
    deleting = paths["/v1/transcriptions/{job_id}"]["delete"]
    assert deleting["operationId"] == "deleteTranscription"
    assert "content" not in deleting["responses"]["204"]
    assert {"204", "401", "404", "409", "429"} <= set(deleting["responses"])
    # Each 409 names its own code, not every 409 of the API.
    assert "`job_active`" in deleting["responses"]["409"]["description"]
    assert "transcript_not_ready" not in deleting["responses"]["409"]["description"]
    transcript = paths["/v1/transcriptions/{job_id}/transcript"]["get"]["responses"]["409"]
    assert "job_active" not in transcript["description"]
