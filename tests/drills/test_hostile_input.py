"""Hostile input at volume: schemathesis over the OpenAPI document, then hostile bodies
against a real submit process.

The schema is read from the running function itself (functions-framework's WSGI app, with
real PostgreSQL, Redis, the Pub/Sub emulator and fake-gcs-server behind it), so the document
and the behaviour are checked against each other, not against a copy: every operation on its
own (positive and negative data, every check that applies), then stateful runs that follow
the document's ``links`` from a submitted job to the operations on it. The hostile bodies
(10 MB, chunked, 64 KB headers, invalid UTF-8, deep nesting, a trickle, a flood) go over real
sockets to functions-framework under gunicorn (:mod:`tests.drills.hostile_support`).
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from functions_framework import create_app
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode, checks
from schemathesis.engine.errors import is_inconsistent_replay

from podscribe.api.openapi import openapi_document
from podscribe.api.request_bodies import WHISPER_MODELS
from tests.conftest import TEST_PROJECT
from tests.drills.figures import Recorder
from tests.drills.hostile_support import hostile_run, submit_with_emulators
from tests.integration.submit_support import (
    API_KEY,
    SUBMIT_SOURCE,
    applied_environment,
    create_topic_and_subscription,
    episode_url,
    limited_submit_environment,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.positive_data_acceptance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.ignored_auth,
    checks.unsupported_method,
    checks.allow_header_conformance,
    checks.use_after_free,
    checks.ensure_resource_availability,
    checks.object_level_authorization,
]
"""Every check schemathesis has but ``max_response_time`` (a timing, which depends on the
CPU). ``use_after_free`` and ``ensure_resource_availability`` act in the stateful runs (they
need the links); ``object_level_authorization`` acts only with several identities configured
(``[auth.wfc]`` peers), so here it passes through: one key never seeing another's jobs is
tested in ``tests/integration/test_list_delete.py``."""

POSITIVE_STATUSES = ["2xx", "401", "404", "409", "413", "422"]
"""What schema-valid data may be answered with, each documented: 404 (a well-formed id of no
job), 409 (the job has not succeeded: no transcript, speakers or share links yet), 413 (no JSON
Schema bounds a body's bytes: a schema-valid CSP report may pass 8 KB) and 422 (a schema-valid
``url`` is almost never an Apple episode link; a whole-number line limit may be out of the
caption formats' range)."""

FOREIGN_CURSOR = {"GET /v1/transcriptions", "GET /v1/search"}
"""Operations where a schema-valid ``cursor`` (the pattern of the ones given out) is still one
this API never gave out: 400, documented."""

DOCUMENT = openapi_document("http://localhost")
OPERATIONS = [
    (path, method.upper(), mode)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    # Negative cases need something to get wrong: a parameter or a body.
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]
EXAMPLES_PER_OPERATION = 40
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 8


@pytest.fixture
def api_schema(
    monkeypatch: pytest.MonkeyPatch, database_url: str, pubsub_emulator: str, gcs_emulator: str
) -> Iterator[Any]:
    topic, _ = create_topic_and_subscription(TEST_PROJECT)
    env = limited_submit_environment(
        rate_limit="100000",
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic,
        pubsub_host=pubsub_emulator,
        storage_url=gcs_emulator,
        # The document lists every model a deployment may serve; this one serves them all,
        # so a schema-valid ``model`` is one it accepts.
        PODSCRIBE_ALLOWED_MODELS=",".join(WHISPER_MODELS),
    )
    with applied_environment(monkeypatch, env):
        app = create_app("submit", str(SUBMIT_SOURCE), "http")
        schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)
        config = schema.config.checks
        # A body past PODSCRIBE_MAX_REQUEST_BYTES is refused unread, with 413, whatever else
        # is wrong with it: that is a rejection too.
        config.negative_data_rejection.expected_statuses = [
            *config.negative_data_rejection.expected_statuses,
            "413",
        ]
        yield schema


class Tally:
    """What a schemathesis run sent and got, for the figures."""

    def __init__(self) -> None:
        self.cases = 0
        self.scenarios = 0
        self.statuses: Counter[int] = Counter()
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []

    def count(self, case: Any, status: int) -> None:
        self.cases += 1
        self.statuses[status] += 1
        self.answers[f"{case.operation.method.upper()} {case.operation.path} {status}"] += 1

    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def _bounded(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def expect_for(schema: Any, case: Any, response: Any) -> None:
    """Set what ``positive_data_acceptance`` accepts for this case's operation and answer."""
    label = f"{case.operation.method.upper()} {case.operation.path}"
    extra = ["400"] if label in FOREIGN_CURSOR or _ssrf_refusal(response) else []
    schema.config.checks.positive_data_acceptance.expected_statuses = [
        *POSITIVE_STATUSES,
        *extra,
    ]


def _ssrf_refusal(response: Any) -> bool:
    """A schema-valid ``callback_url`` refused by the SSRF guard (an internal or reserved
    host, which no JSON Schema can say): 400, documented as a field refused."""
    if response.status_code != 400:
        return False
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        return False
    return detail.startswith("'callback_url' is refused:")


def run_operation(schema: Any, path: str, method: str, mode: GenerationMode, tally: Tally) -> None:
    """One operation's bounded hypothesis search, every check applied to every answer."""
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @_bounded(EXAMPLES_PER_OPERATION)
    def conforms(case: Any) -> None:
        response = case.call(headers=AUTH)
        tally.count(case, response.status_code)
        expect_for(schema, case, response)
        case.validate_response(response, headers=AUTH, checks=CHECKS)

    conforms()


def stateful_machine(schema: Any, tally: Tally) -> type:
    """The document's state machine, authenticated, with submissions of real episode links.

    A schema-valid ``url`` is almost never an Apple episode link (422, a dead end), so each
    submission's ``url`` is replaced by an episode link derived from what was drawn: the run
    gets 202s and 200s and follows their links to the job's operations.
    """
    base = schema.as_state_machine()

    class Machine(base):  # type: ignore[misc,valid-type]
        def before_call(self, case: Any) -> None:
            if (
                case.operation.method.upper() == "POST"
                and case.operation.path == "/v1/transcriptions"
                and isinstance(case.body, dict)
            ):
                drawn = str(case.body.get("url", ""))
                episode = 1_000_000_000_000 + zlib.crc32(drawn.encode()) % 50
                case.body["url"] = episode_url(episode_id=episode)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH}

        def teardown(self) -> None:
            super().teardown()
            tally.scenarios += 1

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            tally.count(case, response.status_code)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            # Failures are listed, not raised: the server's state moves on between runs, so
            # hypothesis' replay of a failing scenario would differ (a "flaky" error hiding it).
            expect_for(schema, case, response)
            try:
                case.validate_response(
                    response,
                    checks=CHECKS,
                    headers=AUTH,
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - listed, asserted
                tally.failures.append(f"stateful {case.operation.label}: {error}"[:4000])

    return Machine


def run_stateful(schema: Any, tally: Tally) -> int:
    """Run the state machine until STATEFUL_SCENARIOS scenarios ran; returns the restarts.

    The server's state moves on between scenarios (jobs exist, are deleted), so hypothesis
    may find a replayed scenario drawing differently (``Flaky``, or its assertion of the same
    in its data tree): as schemathesis' own runner does, that is a restart, not a failure.
    Check failures never reach hypothesis (``validate_response`` lists them).
    """
    machine = stateful_machine(schema, tally)
    restarts = 0
    while tally.scenarios < STATEFUL_SCENARIOS and restarts < 5:
        try:
            run_state_machine_as_test(
                machine,
                settings=settings(
                    max_examples=STATEFUL_SCENARIOS - tally.scenarios,
                    stateful_step_count=STATEFUL_STEPS,
                    phases=[Phase.generate],
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                ),
            )
        except (Flaky, AssertionError) as error:
            if not (isinstance(error, Flaky) or is_inconsistent_replay(error)):
                raise
            restarts += 1
        else:
            break
    return restarts


def test_schemathesis_every_operation_and_the_links(api_schema: Any, figures: Recorder) -> None:
    row = figures(
        "Schemathesis over the OpenAPI document",
        f"{len(OPERATIONS)} operation x mode searches of {EXAMPLES_PER_OPERATION} examples, "
        f"then {STATEFUL_SCENARIOS} stateful scenarios of up to {STATEFUL_STEPS} steps along "
        "the document's links, every check but max_response_time",
        bound="zero check failures, zero 5xx",
    )
    started = time.monotonic()
    single = Tally()
    for path, method, mode in OPERATIONS:
        try:
            run_operation(api_schema, path, method, mode, single)
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - all run; listed
            single.failures.append(f"{method} {path} {mode.value}: {error}"[:2000])
    stateful = Tally()
    restarts = run_stateful(api_schema, stateful)
    # A random id is never a job's: a 2xx on a job's own operations means a link was followed.
    links_followed = sum(
        n
        for answer, n in stateful.answers.items()
        if "{job_id}" in answer and answer.rsplit(" ", 1)[1].startswith("2")
    )
    row.observed.update(
        {
            "cases (single operations)": single.cases,
            "cases (stateful steps)": stateful.cases,
            "stateful scenarios": stateful.scenarios,
            "stateful restarts (replay drew differently)": restarts,
            "statuses (stateful)": dict(sorted(stateful.statuses.items())),
            "2xx along links (stateful)": links_followed,
            "failures": len(single.failures) + len(stateful.failures),
            "5xx": single.server_errors() + stateful.server_errors(),
            "seconds": round(time.monotonic() - started, 1),
        }
    )
    row.save()
    failures = single.failures + stateful.failures
    assert failures == [], "\n\n".join(failures)
    assert single.server_errors() == stateful.server_errors() == 0
    # The links were followed: the stateful run did more than submit.
    assert stateful.statuses[202] >= 1 and links_followed >= 1, stateful.answers


def test_hostile_bodies_against_a_real_process(
    tmp_path: Path, database_url: str, pubsub_emulator: str, figures: Recorder
) -> None:
    with submit_with_emulators(tmp_path, database_url, pubsub_emulator) as running:
        hostile_run(running, figures)
