"""Log lines are JSON that Cloud Logging understands."""

from __future__ import annotations

import json
import logging

import pytest

from podscribe.log import (
    configure_logging,
    mask_credentials,
    parse_trace_header,
    trace_context,
    url_host,
)
from podscribe.settings import load_settings


def test_lines_carry_severity_message_trace_and_extras(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(load_settings(env="test", project_id="proj-1", log_level="DEBUG"))
    logger = logging.getLogger("podscribe.test")
    with trace_context("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"):
        logger.warning("claimed %s", "job-1", extra={"job_id": "job-1"})
    logger.info("outside")
    try:
        int("boom")
    except ValueError:
        logger.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    first, second, third = lines[-3:]
    assert first["severity"] == "WARNING"
    assert first["message"] == "claimed job-1"
    assert first["job_id"] == "job-1"
    assert first["logging.googleapis.com/trace"] == (
        "projects/proj-1/traces/0af7651916cd43dd8448eb211c80319c"
    )
    assert first["logging.googleapis.com/spanId"] == "b7ad6b7169203331"
    assert "logging.googleapis.com/trace" not in second
    assert third["severity"] == "ERROR"
    assert "ValueError: invalid literal for int()" in third["message"]


def test_configuring_twice_does_not_duplicate_lines(capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(env="test")
    configure_logging(settings)
    configure_logging(settings)
    logging.getLogger("podscribe.test").warning("once")
    assert capsys.readouterr().err.count('"once"') == 1


@pytest.mark.parametrize(
    ("traceparent", "cloud", "expected"),
    [
        (
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            None,
            ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
        ),
        (
            None,
            "105445aa7843bc8bf206b12000100000/1;o=1",
            ("105445aa7843bc8bf206b12000100000", "0000000000000001"),
        ),
        (None, "105445aa7843bc8bf206b12000100000", ("105445aa7843bc8bf206b12000100000", None)),
        ("garbage", "also garbage", (None, None)),
        (None, None, (None, None)),
    ],
)
def test_trace_headers_are_parsed(
    traceparent: str | None, cloud: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert parse_trace_header(traceparent, cloud) == expected


def _fail(message: str) -> None:
    raise RuntimeError(message)


def test_no_line_carries_a_credential_whoever_logged_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(load_settings(env="test", log_level="INFO"))
    logger = logging.getLogger("podscribe.test")
    logger.warning(
        "could not reach redis://:redis-pw@10.0.0.3:6379/0",
        extra={
            "database": "postgresql://podscribe:db-pw@10.0.0.4:5432/podscribe",
            "nested": {"hook": "https://hooks.example/h?token=tok-1&x=1"},
            "header": "Authorization: Bearer key-123",
        },
    )
    try:
        _fail("login failed for https://u:exc-pw@api.example/?api_key=k-9")
    except RuntimeError:
        logger.exception("boom")
    err = capsys.readouterr().err
    for secret in ("redis-pw", "db-pw", "tok-1", "key-123", "exc-pw", "k-9"):
        assert secret not in err
    first = json.loads(err.splitlines()[-2])
    assert first["message"] == "could not reach redis://:***@10.0.0.3:6379/0"
    assert first["nested"] == {"hook": "https://hooks.example/h?token=***&x=1"}


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://user:pw@hooks.example:8443/T/B/secret?token=1#f", "https://hooks.example:8443"),
        ("http://[::1]:8080/x", "http://[::1]:8080"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://127.0.0.1:6379"),
        ("not a url", "<invalid url>"),
    ],
)
def test_url_host_keeps_scheme_host_and_port_only(url: str, host: str) -> None:
    assert url_host(url) == host
    assert mask_credentials(host) == host
