"""Choosing and configuring the storage backend, and how the S3 backend reads its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from podscribe.errors import SettingsError
from podscribe.settings import Settings, env_name, load_settings
from podscribe.storage import TranscriptStore
from podscribe.storage_backends.gcs import GcsBackend
from podscribe.storage_backends.s3 import S3Backend


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.delenv("PODSCRIBE_SECRETS_DIR", raising=False)


def test_cloud_storage_is_the_default_and_s3_is_chosen_by_one_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().storage_backend == "gcs"
    assert isinstance(TranscriptStore(load_settings())._backend, GcsBackend)
    monkeypatch.setenv("PODSCRIBE_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("PODSCRIBE_S3_ENDPOINT_URL", "http://minio.storage.svc:9000")
    settings = load_settings()
    assert (settings.s3_region, settings.s3_endpoint_url) == (
        "us-east-1",
        "http://minio.storage.svc:9000",
    )
    assert isinstance(TranscriptStore(settings)._backend, S3Backend)  # nothing connects yet


def test_credentials_may_come_from_secret_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "AWS_ACCESS_KEY_ID").write_text("AKIAFROMFILE")
    (tmp_path / "AWS_SECRET_ACCESS_KEY").write_text("secret-from-file")
    monkeypatch.setenv("PODSCRIBE_SECRETS_DIR", str(tmp_path))
    settings = load_settings(storage_backend="s3")
    assert settings.aws_access_key_id is not None
    assert settings.aws_access_key_id.get_secret_value() == "AKIAFROMFILE"
    assert "secret-from-file" not in repr(settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"storage_backend": "azure"}, "PODSCRIBE_STORAGE_BACKEND"),
        ({"s3_endpoint_url": "minio:9000"}, "PODSCRIBE_S3_ENDPOINT_URL"),
        ({"s3_endpoint_url": "http://minio:9000/bucket"}, "no path"),
        ({"s3_region": "Europe"}, "PODSCRIBE_S3_REGION"),
        ({"storage_backend": "s3", "bucket": "Podscribe_Transcripts"}, "not an S3 bucket"),
        ({"aws_access_key_id": "AKIA"}, "set both or neither"),
        ({"aws_session_token": "token"}, "AWS_SESSION_TOKEN needs"),
    ],
)
def test_bad_storage_settings_say_what_is_wrong(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(**overrides)


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "transient", "not_found"),
    [
        (_client_error("SlowDown", 503), True, False),
        (_client_error("ThrottlingException", 400), True, False),
        (_client_error("InternalError", 500), True, False),
        (_client_error("TooManyRequests", 429), True, False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), True, False),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:9"), True, False),
        (_client_error("NoSuchKey", 404), False, True),
        (_client_error("404", 404), False, True),  # HeadObject has no body, only the status
        (_client_error("NoSuchBucket", 404), False, True),
        (_client_error("AccessDenied", 403), False, False),
        (ValueError("not S3's"), False, False),
    ],
)
def test_s3_errors_are_sorted_into_retry_missing_and_final(
    error: BaseException, transient: bool, not_found: bool
) -> None:
    backend = S3Backend(load_settings(storage_backend="s3"))
    assert backend.is_transient(error) is transient
    assert backend.is_not_found(error) is not_found
