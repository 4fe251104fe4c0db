"""The job JSON, problem documents and the OpenAPI document, checked against each other."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from podscribe.api.documents import job_document
from podscribe.api.openapi import API_ERRORS, openapi_document
from podscribe.api.problems import problem_response
from podscribe.errors import (
    DatabaseUnavailableError,
    JobNotFoundError,
    PodscribeError,
    RateLimitedError,
)
from podscribe.jobs import Job, JobStatus
from podscribe.storage import TRANSCRIPT_FORMATS

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DOCUMENT = openapi_document("https://api.example.com")


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    # The OpenAPI document is the root, so its "#/components/..." references resolve.
    schema = {**DOCUMENT, "$ref": f"#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def make_job(status: JobStatus, **changes: Any) -> Job:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "collection_id": 1535809341,
        "episode_id": 1000651234567,
        "source_url": "https://podcasts.apple.com/us/podcast/x/id1535809341?i=1000651234567",
        "status": status,
        "attempts": 1,
        "progress": 0.25,
        "created_at": NOW,
        "queued_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Job(**values)


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_status_matches_the_job_schema(status: JobStatus) -> None:
    changes: dict[str, Any] = {}
    if status is JobStatus.FAILED:
        changes = {"error_code": "episode_not_found", "error_message": "gone"}
    if status is JobStatus.SUCCEEDED:
        changes = {"transcript_objects": {fmt: f"t.{fmt}" for fmt in TRANSCRIPT_FORMATS}}
    if status is JobStatus.RUNNING:
        changes = {"checkpoint_object": "c.json", "started_at": NOW, "episode": {"title": "T"}}
    document = job_document(make_job(status, **changes), "https://api.example.com")
    validator("Job").validate(document)
    assert document["status"] == status.value
    assert (document["error"] is not None) == (status is JobStatus.FAILED)
    assert ("transcripts" in document["links"]) == (status is JobStatus.SUCCEEDED)
    assert document["partial_transcript"]["available"] == (status is JobStatus.RUNNING)


def test_links_point_at_the_api() -> None:
    job = make_job(JobStatus.SUCCEEDED, transcript_objects={"txt": "t.txt"})
    links = job_document(job, "https://api.example.com")["links"]
    assert links["self"] == f"https://api.example.com/v1/transcriptions/{job.id}"
    assert links["transcripts"]["vtt"] == f"{links['self']}/transcript?format=vtt"


@pytest.mark.parametrize(
    "error",
    [
        JobNotFoundError("no job x"),
        RateLimitedError("slow down", retry_after=7),
        DatabaseUnavailableError("database unavailable: connection refused"),
        PodscribeError("pg8000 said: relation jobs does not exist at line 3"),
    ],
)
def test_problems_match_the_problem_schema(error: PodscribeError) -> None:
    response = problem_response(error, instance="/v1/transcriptions/x")
    body = json.loads(response.get_data())
    validator("Problem").validate(body)
    assert response.mimetype == "application/problem+json"
    assert body["status"] == response.status_code == error.http_status
    assert body["code"] == error.code
    if error.http_status == 500:
        assert "pg8000" not in body["detail"]  # internals stay in our logs
    if isinstance(error, RateLimitedError):
        assert response.headers["Retry-After"] == "7"
    if error.http_status == 503:
        assert response.headers["Retry-After"] == "5"


def test_the_document_lists_every_error_code_and_status() -> None:
    codes = set(DOCUMENT["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    assert codes == {error.code for error in API_ERRORS}
    statuses = {
        status
        for path in DOCUMENT["paths"].values()
        for operation in path.values()
        for status in operation["responses"]
    }
    assert {"400", "401", "404", "409", "413", "415", "422", "429", "503"} <= statuses


def test_every_reference_resolves() -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(DOCUMENT):
        target: Any = DOCUMENT
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref
    jsonschema.Draft202012Validator.check_schema(DOCUMENT["components"]["schemas"]["Job"])
