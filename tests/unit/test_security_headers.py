"""The security headers' builder: the CSP of the shared contract, local extras only under
``PODSCRIBE_ENV=local``, HSTS only in production, and the strictest set when the settings
cannot be read."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Response

from podscribe.api.headers import (
    CSP_REPORT_PATH,
    HSTS,
    apply_security_headers,
    content_security_policy,
    security_headers,
)
from podscribe.errors import SettingsError
from podscribe.settings import Settings, load_settings

CONTRACT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src https:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; "
    "report-uri /v1/csp-reports; report-to csp"
)
EVERY_ENVIRONMENT = {
    "Content-Security-Policy",
    "Reporting-Endpoints",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "X-Frame-Options",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "Permissions-Policy",
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


def test_the_policy_is_the_contract_word_for_word() -> None:
    assert content_security_policy() == CONTRACT_CSP
    assert security_headers(load_settings(env="test"))["Content-Security-Policy"] == CONTRACT_CSP


def test_the_policy_allows_nothing_inline_nothing_evaluated_nothing_framed() -> None:
    policy = directives(content_security_policy(("http://127.0.0.1:9",)))
    assert not [s for sources in policy.values() for s in sources if "unsafe" in s]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert policy["media-src"] == ["https:", "http://127.0.0.1:9"]
    assert policy["report-uri"] == [CSP_REPORT_PATH]


def test_the_other_headers() -> None:
    headers = security_headers(load_settings(env="test"))
    assert set(headers) == EVERY_ENVIRONMENT
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert headers["Reporting-Endpoints"] == 'csp="/v1/csp-reports"'
    permissions = dict(item.split("=") for item in headers["Permissions-Policy"].split(", "))
    assert permissions == {"camera": "()", "microphone": "()", "geolocation": "()"}


def test_local_audio_stand_ins_are_media_sources_under_the_local_profile_only() -> None:
    local = load_settings(env="local", ssrf_allow=["127.0.0.1:8765", "localhost:9000"])
    media = directives(security_headers(local)["Content-Security-Policy"])["media-src"]
    assert media == ["https:", "http://127.0.0.1:8765", "http://localhost:9000"]
    # The local profile without stand-ins, and every other environment: https only.
    for settings in (load_settings(env="local"), load_settings(env="test")):
        assert security_headers(settings)["Content-Security-Policy"] == CONTRACT_CSP
    # The settings refuse the escape hatch outside the local profile, so no extras can leak.
    with pytest.raises(SettingsError):
        load_settings(env="production", ssrf_allow=["127.0.0.1:8765"])


@pytest.mark.parametrize(("env", "hsts"), [("production", True), ("local", False), ("test", False)])
def test_hsts_in_production_only(env: str, hsts: bool) -> None:
    headers = security_headers(load_settings(env=env))
    assert ("Strict-Transport-Security" in headers) is hsts
    if hsts:
        assert headers["Strict-Transport-Security"] == HSTS
        assert set(headers) == EVERY_ENVIRONMENT | {"Strict-Transport-Security"}


def test_applying_replaces_what_a_handler_set_and_survives_unreadable_settings() -> None:
    response = Response("x")
    response.headers["Content-Security-Policy"] = "default-src *"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"

    def broken() -> Settings:
        raise SettingsError("invalid configuration: PODSCRIBE_ENV")

    apply_security_headers(response, broken)
    assert response.headers.getlist("Content-Security-Policy") == [CONTRACT_CSP]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    assert "Strict-Transport-Security" not in response.headers
    production = apply_security_headers(Response("x"), lambda: load_settings(env="production"))
    assert production.headers["Strict-Transport-Security"] == HSTS


def test_the_builder_hands_out_copies() -> None:
    settings = load_settings(env="test")
    security_headers(settings)["Content-Security-Policy"] = "default-src *"
    assert security_headers(settings)["Content-Security-Policy"] == CONTRACT_CSP
