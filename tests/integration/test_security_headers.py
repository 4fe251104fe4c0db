"""Every answer of the real submit entry point carries the security headers: each route of the
route table (whatever it answers), a 404, a 405, a 413, a 429 and the errors functions-framework
raises before the target runs."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from podscribe.api.headers import (
    HSTS,
    SharedResourceResponse,
    content_security_policy,
    security_headers,
)
from podscribe.api.routes import ROUTES, Route
from podscribe.settings import load_settings
from tests.integration.submit_support import API_KEY, EPISODE_URL, submit_test_client

AUTH = {"Authorization": f"Bearer {API_KEY}"}
EXPECTED = security_headers(load_settings(env="test"))


def assert_secured(response: Any, where: str, expected: dict[str, str] = EXPECTED) -> None:
    for name, value in expected.items():
        assert response.headers.getlist(name) == [value], f"{where}: {name}"
    assert "Strict-Transport-Security" not in response.headers, where


def call(client: Any, route: Route) -> Any:
    # A job that does not exist, a file that does not exist: answered, with headers.
    path = route.path.replace("{job_id}", str(uuid.uuid4()))
    path = re.sub(r"\{\w+\}", "no-such-name", path)
    body = {"json": {"url": EPISODE_URL}} if route.method == "POST" else {}
    return client.open(path, method=route.method, headers=AUTH, **body)


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def test_every_route_carries_them(client: Any) -> None:
    statuses = {}
    for route in ROUTES:
        response = call(client, route)
        statuses[f"{route.method} {route.path}"] = response.status_code
        expected = EXPECTED
        if route.path.startswith("/t/") and response.status_code < 400:
            # A share link's answers are for any origin, and nothing in them runs.
            expected = {**EXPECTED, **SharedResourceResponse.security_overrides}
        where = f"{route.method} {route.path} ({response.status_code})"
        assert_secured(response, where, expected)
    # Successes and refusals alike (a job that does not exist is 404, a report body 400/415).
    assert {status // 100 for status in statuses.values()} >= {2, 4}, statuses
    assert len(statuses) == len(ROUTES) >= 10


def test_errors_carry_them(client: Any) -> None:
    answers = {
        404: client.get("/no/such/path"),
        405: client.put("/v1/transcriptions", headers=AUTH),
        413: client.post(
            "/v1/transcriptions",
            data=b'{"url": "' + b"a" * 20_000 + b'"}',
            headers={**AUTH, "Content-Type": "application/json"},
        ),
        401: client.get("/v1/transcriptions"),
        415: client.post("/v1/csp-reports", data="{}", content_type="application/json"),
    }
    for status, response in answers.items():
        assert response.status_code == status
        assert_secured(response, str(status))


def test_a_rate_limited_answer_carries_them(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = submit_test_client(monkeypatch, PODSCRIBE_RATE_LIMIT_PER_IP="1")
    statuses = [client.get("/v1/transcriptions").status_code for _ in range(3)]
    assert statuses[-1] == 429
    assert_secured(client.get("/v1/transcriptions"), "429")


def test_framework_errors_carry_them(client: Any) -> None:
    # functions-framework's own rules refuse these before the target runs.
    for path in ("/favicon.ico", "/v1/transcriptions/a%0Ab"):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert_secured(response, path)


def test_the_local_profile_lets_its_audio_stand_ins_play(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = submit_test_client(
        monkeypatch, PODSCRIBE_ENV="local", PODSCRIBE_SSRF_ALLOW="127.0.0.1:8765"
    )
    expected = {
        **EXPECTED,
        "Content-Security-Policy": content_security_policy(("http://127.0.0.1:8765",)),
    }
    assert_secured(client.get("/healthz"), "local /healthz", expected)
    assert_secured(client.get("/favicon.ico"), "local /favicon.ico", expected)


def test_production_pins_https(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = submit_test_client(monkeypatch, PODSCRIBE_ENV="production")
    for response in (client.get("/healthz"), client.get("/favicon.ico")):
        assert response.headers["Strict-Transport-Security"] == HSTS
        assert response.headers["Content-Security-Policy"] == content_security_policy()
