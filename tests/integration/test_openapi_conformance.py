"""Schemathesis against ``/v1/openapi.json``: no 5xx, and every response matches the document.

The schema is read from the running function itself (through functions-framework's WSGI
app, with real PostgreSQL, Redis, Pub/Sub emulator and fake-gcs-server behind it), so the
document and the behaviour are checked against each other, not against a copy.
Bounded: ``max_examples`` per operation and mode keeps the run to about a minute on 2 cores.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from functions_framework import create_app
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from podscribe.api.openapi import openapi_document
from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import (
    API_KEY,
    SUBMIT_SOURCE,
    applied_environment,
    create_topic_and_subscription,
    limited_submit_environment,
)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.ignored_auth,
    checks.unsupported_method,
]
"""The conformance checks. ``positive_data_acceptance`` is left out on purpose: a schema-valid
``url`` string is almost never an Apple episode link, and 422 is the documented answer."""


@pytest.fixture
def api_schema(
    monkeypatch: pytest.MonkeyPatch, database_url: str, pubsub_emulator: str, gcs_emulator: str
) -> Any:
    topic, _ = create_topic_and_subscription(TEST_PROJECT)
    env = limited_submit_environment(
        rate_limit="100000",
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_emulator,
        storage_url=gcs_emulator,
    )
    with applied_environment(monkeypatch, env):
        app = create_app("submit", str(SUBMIT_SOURCE), "http")
        schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
        # A body past PODSCRIBE_MAX_REQUEST_BYTES is refused unread, with 413, whatever else
        # is wrong with it: that is a rejection too.
        rejection = schema.config.checks.negative_data_rejection
        rejection.expected_statuses = [*rejection.expected_statuses, "413"]
        yield schema


DOCUMENT = openapi_document("http://localhost")
CASES = [
    (path, method.upper(), mode)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Negative cases need something to get wrong: a parameter or a body.
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]


# Operations are parametrized by hand (not ``schemathesis.pytest.from_fixture``, which does
# not support pytest 9 yet); each runs its own bounded hypothesis search.
@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_every_operation_conforms(
    api_schema: Any, path: str, method: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def conforms(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {API_KEY}"}, checks=CHECKS)

    conforms()
