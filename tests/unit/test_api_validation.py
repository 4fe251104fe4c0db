"""Request validation, without a server: werkzeug builds real requests from raw parts."""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from podscribe.api.validation import (
    WHISPER_MODELS,
    client_ip,
    parse_submit_request,
    parse_transcript_query,
)
from podscribe.errors import (
    EpisodeLinkError,
    InvalidLineLimitsError,
    InvalidRequestError,
    NotAnEpisodeError,
    NotApplePodcastsError,
    PayloadTooLargeError,
    PodscribeError,
    UnsupportedMediaTypeError,
)
from podscribe.settings import load_settings

SETTINGS = load_settings(env="test", max_request_bytes=1024, allowed_models=["small.en"])
URL = "https://podcasts.apple.com/us/podcast/show/id1535809341?i=1000651234567"


def post(body: bytes | str, content_type: str | None = "application/json") -> Request:
    headers = Headers({"Content-Type": content_type} if content_type else {})
    builder = EnvironBuilder(method="POST", path="/v1/transcriptions", data=body, headers=headers)
    return Request(builder.get_environ())


def post_json(value: object) -> Request:
    return post(json.dumps(value))


def test_a_full_submission_is_parsed() -> None:
    parsed = parse_submit_request(
        post_json(
            {
                "url": f"  {URL} ",
                "language": "EN",
                "model": "small.en",
                "callback_url": "https://hooks.example.com/x",
            }
        ),
        SETTINGS,
    )
    assert parsed.url == URL
    assert (parsed.episode.collection_id, parsed.episode.episode_id) == (1535809341, 1000651234567)
    assert parsed.language == "en" and parsed.model == "small.en"
    assert parsed.callback_url == "https://hooks.example.com/x"


def test_optional_fields_may_be_null() -> None:
    parsed = parse_submit_request(
        post_json({"url": URL, "language": None, "model": None, "callback_url": None}), SETTINGS
    )
    assert (parsed.language, parsed.model, parsed.callback_url) == (None, None, None)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (post(json.dumps({"url": URL}), "text/plain"), UnsupportedMediaTypeError),
        (post(json.dumps({"url": URL}), None), UnsupportedMediaTypeError),
        (
            post(json.dumps({"url": URL}), "application/json; charset=latin-1"),
            UnsupportedMediaTypeError,
        ),
        (post(json.dumps({"url": URL + "&x=" + "a" * 2000})), PayloadTooLargeError),
        (post(b"\xff\xfe"), InvalidRequestError),
        (post("{"), InvalidRequestError),
        (post("[" * 100_000 + "]" * 100_000), PayloadTooLargeError),
        (post_json("a string"), InvalidRequestError),
        (post_json({"url": 5}), InvalidRequestError),
        (post_json({"url": "   "}), InvalidRequestError),
        (post_json({"url": URL, "extra": 1}), InvalidRequestError),
        (post_json({"url": URL, "language": "e"}), InvalidRequestError),
        (post_json({"url": URL, "language": "en-US"}), InvalidRequestError),
        (post_json({"url": URL, "model": "/models/evil"}), InvalidRequestError),
        (post_json({"url": URL, "model": "Systran/faster-whisper-large-v3"}), InvalidRequestError),
        (post_json({"url": URL, "callback_url": ""}), InvalidRequestError),
        (post_json({"url": URL, "callback_url": "http://hooks.example.com/"}), InvalidRequestError),
        (post_json({"url": URL, "callback_url": "https://10.0.0.1/"}), InvalidRequestError),
        (post_json({"url": URL, "callback_url": "https://[::1]/"}), InvalidRequestError),
        (
            post_json({"url": URL, "callback_url": "https://metadata.google.internal/"}),
            InvalidRequestError,
        ),
        (post_json({"url": URL, "callback_url": "https://0x7f.1/"}), InvalidRequestError),
        (
            post_json({"url": URL, "callback_url": "https://user@hooks.example.com/"}),
            InvalidRequestError,
        ),
        (
            post_json({"url": URL, "callback_url": "https://hooks.example.com:6379/"}),
            InvalidRequestError,
        ),
        (post_json({"url": "https://example.com/podcast/id1?i=2"}), NotApplePodcastsError),
        (
            post_json({"url": "https://podcasts.apple.com/us/podcast/x/id1535809341"}),
            NotAnEpisodeError,
        ),
        (
            post_json({"url": "https://podcasts.apple.com/us/podcast/x/id9999999999999999999?i=1"}),
            EpisodeLinkError,
        ),
    ],
)
def test_bad_submissions_get_the_error_that_fits(
    request_: Request, error: type[PodscribeError]
) -> None:
    with pytest.raises(error):
        parse_submit_request(request_, SETTINGS)


def test_the_size_cap_holds_without_a_content_length() -> None:
    body = json.dumps({"url": URL + "&x=" + "a" * 5000}).encode()
    builder = EnvironBuilder(
        method="POST",
        path="/",
        input_stream=io.BytesIO(body),
        headers=Headers({"Content-Type": "application/json", "Transfer-Encoding": "chunked"}),
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    with pytest.raises(PayloadTooLargeError):
        parse_submit_request(Request(environ), SETTINGS)


def test_a_model_the_deployment_does_not_serve_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match=r"'base.en' is not served here.*small.en"):
        parse_submit_request(post_json({"url": URL, "model": "base.en"}), SETTINGS)
    only_default = load_settings(env="test")
    with pytest.raises(InvalidRequestError, match="the deployment's default only"):
        parse_submit_request(post_json({"url": URL, "model": "small.en"}), only_default)


def test_model_names_are_faster_whisper_names_only() -> None:
    assert "tiny.en" in WHISPER_MODELS and "large-v3" in WHISPER_MODELS
    assert all("/" not in name and ".." not in name for name in WHISPER_MODELS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ("json", False)),
        ({"format": "srt"}, ("srt", False)),
        ({"format": "json", "partial": "true"}, ("json", True)),
        ({"partial": "0"}, ("json", False)),
    ],
)
def test_transcript_queries(args: dict[str, str], expected: tuple[str, bool]) -> None:
    query = parse_transcript_query(args)
    assert (query.format, query.partial) == expected


@pytest.mark.parametrize(
    "args",
    [{"format": "docx"}, {"format": ""}, {"partial": "maybe"}],
)
def test_bad_transcript_queries(args: dict[str, str]) -> None:
    with pytest.raises(InvalidRequestError):
        parse_transcript_query(args)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ({"max_line_chars": "-12618"}, InvalidRequestError, "whole number, not"),
        ({"max_line_chars": "2788420301"}, InvalidLineLimitsError, "from 16 to 200"),
        ({"max_lines": "9" * 5000}, InvalidLineLimitsError, "from 1 to 4"),
        ({"max_lines": "2.5"}, InvalidRequestError, "whole number, not"),
        ({"max_lines": "-"}, InvalidRequestError, "whole number, not"),
    ],
)
def test_a_whole_number_out_of_range_is_422_however_long(
    args: dict[str, str], error: type[PodscribeError], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_transcript_query(args)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("speakers_expected", 0, "whole number from 1 to 10"),
        ("speakers_expected", 2.5, "whole number from 1 to 10"),
        ("speakers_expected", "3", "whole number from 1 to 10"),
        ("speakers", 1, "true or false"),
        ("force", "yes", "true or false"),
    ],
)
def test_fields_that_are_not_strings_say_what_they_are(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_submit_request(post_json({"url": URL, field: value}), SETTINGS)


def test_a_whole_float_is_an_integer_as_json_schema_says() -> None:
    submission = parse_submit_request(post_json({"url": URL, "speakers_expected": 3.0}), SETTINGS)
    assert submission.speakers_expected == 3 and isinstance(submission.speakers_expected, int)


def request_from(remote: str, forwarded: str | None = None) -> Request:
    headers = Headers({"X-Forwarded-For": forwarded} if forwarded else {})
    builder = EnvironBuilder(path="/", headers=headers, environ_base={"REMOTE_ADDR": remote})
    return Request(builder.get_environ())


def test_client_ip_trusts_only_the_configured_proxies() -> None:
    spoofed = request_from("169.254.1.1", "6.6.6.6, 203.0.113.5")
    assert client_ip(spoofed, 0) == "169.254.1.1"  # no proxy trusted: the peer
    assert client_ip(spoofed, 1) == "203.0.113.5"  # the entry our one proxy appended
    assert client_ip(spoofed, 2) == "6.6.6.6"
    assert client_ip(request_from("10.0.0.1"), 1) == "10.0.0.1"  # header missing
    assert client_ip(request_from("10.0.0.1", "garbage"), 1) == "unknown"
    assert client_ip(request_from("10.0.0.1", "2001:DB8::1"), 1) == "2001:db8::1"


def test_production_trusts_one_proxy_by_default() -> None:
    assert load_settings(env="production").proxy_hops == 1
    assert load_settings(env="test").proxy_hops == 0
    assert load_settings(env="production", trusted_proxy_hops=2).proxy_hops == 2
