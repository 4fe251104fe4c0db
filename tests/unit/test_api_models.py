"""The models are the contract: the route table, the OpenAPI document and the rendered
documents agree with them and with each other."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import jsonschema
import pytest

from podscribe.api.documents import job_model
from podscribe.api.models import (
    Job,
    JobList,
    Problem,
    TranscriptFormat,
    WebhookEvent,
)
from podscribe.api.openapi import openapi_document
from podscribe.api.request_bodies import WHISPER_MODELS, SubmitRequest
from podscribe.api.routes import ROUTES, url_map
from podscribe.jobs import Job as JobRow
from podscribe.jobs import JobStatus
from podscribe.jobs.webhooks import webhook_payload
from podscribe.settings import load_settings
from podscribe.storage import TRANSCRIPT_FORMATS

DOCUMENT = openapi_document("https://api.example.com")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    schema = {**DOCUMENT, "$ref": f"#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def row(status: JobStatus, **changes: Any) -> JobRow:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "collection_id": 1,
        "episode_id": 2,
        "source_url": "https://podcasts.apple.com/us/podcast/x/id1?i=2",
        "status": status,
        "attempts": 1,
        "progress": 1.0,
        "created_at": NOW,
        "queued_at": NOW,
        "updated_at": NOW,
        "finished_at": NOW,
    }
    values.update(changes)
    return JobRow(**values)


def test_the_transcript_formats_are_the_stored_ones() -> None:
    assert set(get_args(TranscriptFormat)) == set(TRANSCRIPT_FORMATS)


def test_every_model_is_a_component_schema() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for model in (SubmitRequest, Job, JobList, Problem, WebhookEvent):
        assert model.__name__ in schemas
        jsonschema.Draft202012Validator.check_schema(schemas[model.__name__])
    assert schemas["SubmitRequest"]["additionalProperties"] is False
    assert schemas["SubmitRequest"]["required"] == ["url"]


def test_the_request_schema_lists_the_model_names() -> None:
    model = DOCUMENT["components"]["schemas"]["SubmitRequest"]["properties"]["model"]
    enums = [option["enum"] for option in model["anyOf"] if "enum" in option]
    assert enums == [list(WHISPER_MODELS)]


def test_paths_are_the_route_table() -> None:
    documented = {
        (path, method.upper(), operation["operationId"])
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
    }
    assert documented == {
        (route.path, route.method, route.operation_id) for route in ROUTES if route.documented
    }
    assert len({route.operation_id for route in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.documented], ids=lambda route: route.operation_id
)
def test_the_dispatcher_matches_each_documented_path(route: Any) -> None:
    adapter = url_map().bind("api.example.com")
    concrete = route.path.replace("{job_id}", str(uuid.uuid4()))
    operation_id, values = adapter.match(concrete, method=route.method)
    assert operation_id == route.operation_id
    assert set(values) == set(route.path_parameters)
    secured = DOCUMENT["paths"][route.path][route.method.lower()]
    assert (secured["security"] != []) == route.auth
    assert ("401" in secured["responses"]) == route.auth


def test_a_job_list_renders_and_matches_its_schema() -> None:
    jobs = [job_model(row(JobStatus.SUCCEEDED), "https://api.example.com")]
    document = JobList(items=jobs, next_cursor=None).render()
    validator("JobList").validate(document)
    assert document["next_cursor"] is None
    assert "partial_transcript" not in document["items"][0]["links"]
    assert document["items"][0]["timings"]["created_at"] == NOW.isoformat()


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_webhook_events_match_their_schema(status: JobStatus) -> None:
    changes: dict[str, Any] = {}
    if status is JobStatus.FAILED:
        changes = {"error_code": "episode_not_found", "error_message": "No such episode."}
    settings = load_settings(env="test", public_base_url="https://api.example.com")
    payload = webhook_payload(row(status, **changes), settings)
    validator("WebhookEvent").validate(payload)
    assert payload["type"] == f"transcription.{status.value}"
    assert ("error" in payload) == (status is JobStatus.FAILED)
    assert ("transcripts" in payload) == (status is JobStatus.SUCCEEDED)
    assert payload["finished_at"] == NOW.isoformat()


def test_a_problem_without_an_instance_leaves_it_out() -> None:
    body = Problem(type="urn:x", title="t", status=400, detail="d", code="invalid_request")
    assert "instance" not in body.render()
