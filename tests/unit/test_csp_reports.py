"""CSP reports: both body formats parsed, each report reduced to a small normalised record,
every bound enforced, and the in-memory store never longer than its cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from podscribe.api.csp_reports import (
    CSP_REPORT_TYPE,
    MAX_BODY_BYTES,
    MAX_ENTRY_CHARS,
    MAX_FIELD_CHARS,
    MAX_REPORTS_PER_BODY,
    REPORTS_TYPE,
    CspReportStore,
    encode_report,
    normalise_report,
    parse_reports,
)
from podscribe.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from podscribe.settings import load_settings

NOW = datetime(2026, 12, 2, 7, 0, 0, tzinfo=UTC)
LEGACY = {
    "csp-report": {
        "document-uri": "https://user:pw@podscribe.example/reader?key=secret#t=12",
        "referrer": "",
        "violated-directive": "script-src-elem",
        "effective-directive": "script-src-elem",
        "original-policy": "default-src 'self'; ...",
        "blocked-uri": "https://evil.example:8443/x.js?token=1",
        "status-code": 200,
    }
}
REPORTING_API = [
    {
        "type": "csp-violation",
        "age": 10,
        "url": "https://podscribe.example/?q=private",
        "user_agent": "Mozilla/5.0",
        "body": {
            "documentURL": "https://podscribe.example/?q=private",
            "effectiveDirective": "style-src-attr",
            "blockedURL": "inline",
            "disposition": "enforce",
        },
    },
    {"type": "deprecation", "url": "https://podscribe.example/", "body": {"id": "x"}},
    {
        "type": "csp-violation",
        "url": "https://podscribe.example/library",
        "body": {"effectiveDirective": "img-src", "blockedURL": "data:image/png;base64,AAAA"},
    },
]


def request(body: bytes | str, content_type: str) -> Request:
    data = body.encode() if isinstance(body, str) else body
    return Request(
        EnvironBuilder(method="POST", data=data, content_type=content_type).get_environ()
    )


def parsed(body: Any, content_type: str) -> list[dict[str, str]]:
    return parse_reports(request(json.dumps(body), content_type), now=NOW)


def test_a_report_uri_body_is_one_report_without_query_credentials_or_path_of_the_blocked() -> None:
    assert parsed(LEGACY, CSP_REPORT_TYPE) == [
        {
            "document_uri": "https://podscribe.example/reader",
            "violated_directive": "script-src-elem",
            "blocked_uri": "https://evil.example:8443",
            "time": "2026-12-02T07:00:00+00:00",
        }
    ]


def test_a_reporting_api_body_keeps_its_csp_violations_only() -> None:
    assert parsed(REPORTING_API, REPORTS_TYPE) == [
        {
            "document_uri": "https://podscribe.example/",
            "violated_directive": "style-src-attr",
            "blocked_uri": "inline",
            "time": "2026-12-02T07:00:00+00:00",
        },
        {
            "document_uri": "https://podscribe.example/library",
            "violated_directive": "img-src",
            "blocked_uri": "data:",
            "time": "2026-12-02T07:00:00+00:00",
        },
    ]
    assert parsed([], REPORTS_TYPE) == []


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        (json.dumps(LEGACY), "application/json", UnsupportedMediaTypeError),
        (json.dumps(LEGACY), "text/plain", UnsupportedMediaTypeError),
        ("{not json", CSP_REPORT_TYPE, InvalidRequestError),
        (b"\xff\xfe", REPORTS_TYPE, InvalidRequestError),
        (json.dumps([LEGACY]), CSP_REPORT_TYPE, InvalidRequestError),
        (json.dumps({"csp-report": "x"}), CSP_REPORT_TYPE, InvalidRequestError),
        (json.dumps(LEGACY), REPORTS_TYPE, InvalidRequestError),
        (json.dumps([{"type": "csp-violation"}]), REPORTS_TYPE, InvalidRequestError),
        (json.dumps([1]), REPORTS_TYPE, InvalidRequestError),
        (json.dumps([{"type": "x", "body": {}}] * (MAX_REPORTS_PER_BODY + 1)), REPORTS_TYPE, None),
        ("[" * 4000 + "]" * 4000, REPORTS_TYPE, None),
        ("x" * (MAX_BODY_BYTES + 1), CSP_REPORT_TYPE, PayloadTooLargeError),
    ],
)
def test_what_is_refused(
    body: str | bytes, content_type: str, error: type[Exception] | None
) -> None:
    size = len(body)
    expected = error or (PayloadTooLargeError if size > MAX_BODY_BYTES else InvalidRequestError)
    with pytest.raises(expected):
        parse_reports(request(body, content_type), now=NOW)


def test_fields_are_cut_and_printable_and_the_entry_is_small() -> None:
    long = {
        "document-uri": "https://podscribe.example/" + "\u2028\x00" + "a" * 5000,
        "violated-directive": '"\\' * 400,
        "blocked-uri": "x" * 5000,
    }
    report = normalise_report(long, NOW)
    assert all(len(value) <= MAX_FIELD_CHARS for value in report.values())
    assert all(value.isprintable() for value in report.values())
    entry = encode_report(report)
    assert len(entry) <= MAX_ENTRY_CHARS
    assert set(json.loads(entry)) == {"document_uri", "violated_directive", "blocked_uri", "time"}
    # Nothing that is not a string is taken for one.
    assert normalise_report({"document-uri": 5, "blocked-uri": ["x"]}, NOW)["blocked_uri"] == ""


def test_odd_urls_do_not_break_the_reduction() -> None:
    for value in ("https://[::1]:bad/x", "http://[::1]:8080/a?b", "about:blank", "eval", ""):
        report = normalise_report({"document-uri": value, "blocked-uri": value}, NOW)
        assert "?" not in report["document_uri"]
    assert normalise_report({"blocked-uri": "http://[::1]:8080/a"}, NOW)["blocked_uri"] == (
        "http://[::1]:8080"
    )


def test_the_memory_store_keeps_the_newest_and_never_grows() -> None:
    store = CspReportStore(load_settings(env="test", redis_url=None, csp_reports_max=50))
    report = normalise_report(LEGACY["csp-report"], NOW)
    for index in range(1000):
        assert store.add([{**report, "violated_directive": f"d{index}"}] * 3) == "memory"
        assert len(store.memory) <= 50
    assert len(store.memory) == store.memory.maxlen == 50
    assert store.recent(1)[0]["violated_directive"] == "d999"
    assert store.add([]) == "none"
