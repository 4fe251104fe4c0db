"""Any S3 API (AWS S3, MinIO, moto) through boto3.

boto3 is imported on first use, never at import. Its own retries are turned off (one
attempt, "standard" mode) so ``podscribe.retry`` in the store stays the one retry policy and
an outage costs a bounded, known time; connect and read timeouts bound each call. An
endpoint URL (MinIO, moto) switches to path-style addressing, which such servers expect.
Large objects go up as multipart uploads and come down as a stream of chunks, so neither
direction needs the whole object twice in memory.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

from podscribe.settings import StorageSettings
from podscribe.storage_backends import CHUNK_BYTES

__all__ = ["S3Backend"]

_CONNECT_SECONDS = 5.0
_READ_SECONDS = 60.0
# Above this a put is a multipart upload (S3's smallest part is 5 MiB).
_MULTIPART_BYTES = 8 * 1024 * 1024

_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "SlowDown",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)


def _client_error_details(error: BaseException) -> tuple[str, int] | None:
    """``(code, HTTP status)`` of a botocore ``ClientError``, else ``None``."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return None
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code, status


def _unwrapped(error: BaseException) -> BaseException:
    """The error under boto3's ``S3UploadFailedError`` (multipart uploads wrap it)."""
    from boto3.exceptions import S3UploadFailedError

    if not isinstance(error, S3UploadFailedError):
        return error
    underneath: BaseException | None = error.__cause__ or error.__context__
    return underneath or error


class S3Backend:
    """An S3 bucket.

    Args:
        settings: ``bucket``, ``s3_endpoint_url``, ``s3_region`` and the optional AWS
            credentials are read.
        client: an existing boto3 S3 client (built on first use when omitted).
    """

    def __init__(self, settings: StorageSettings, *, client: Any | None = None):
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"s3://{self._settings.bucket}"

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build_client()
            return self._client

    def _build_client(self) -> Any:
        import boto3
        from botocore.config import Config

        settings = self._settings
        config = Config(
            region_name=settings.s3_region,
            connect_timeout=_CONNECT_SECONDS,
            read_timeout=_READ_SECONDS,
            retries={"mode": "standard", "max_attempts": 1},
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        credentials: dict[str, str] = {}
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            credentials = {
                "aws_access_key_id": settings.aws_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
            }
            if settings.aws_session_token:
                credentials["aws_session_token"] = settings.aws_session_token.get_secret_value()
        # A session of its own: boto3's default session is shared, mutable process state.
        session = boto3.session.Session(region_name=settings.s3_region, **credentials)
        return session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)

    def is_transient(self, error: BaseException) -> bool:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        error = _unwrapped(error)
        if isinstance(error, (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError)):
            return True
        details = _client_error_details(error)
        if details is None:
            return False
        code, status = details
        return code in _TRANSIENT_CODES or status == 429 or status >= 500

    def is_not_found(self, error: BaseException) -> bool:
        details = _client_error_details(_unwrapped(error))
        return details is not None and (details[0] in _NOT_FOUND_CODES or details[1] == 404)

    def is_backend_error(self, error: BaseException) -> bool:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        return isinstance(error, (ClientError, BotoCoreError, Boto3Error))

    def ensure_bucket(self) -> None:
        try:
            self._s3().head_bucket(Bucket=self._settings.bucket)
        except Exception as error:
            if not self.is_not_found(error):
                raise
        else:
            return
        arguments: dict[str, Any] = {"Bucket": self._settings.bucket}
        if self._settings.s3_region != "us-east-1":  # S3 refuses the default region named
            arguments["CreateBucketConfiguration"] = {
                "LocationConstraint": self._settings.s3_region
            }
        try:
            self._s3().create_bucket(**arguments)
        except Exception as error:
            details = _client_error_details(error)
            if details is None or details[0] != "BucketAlreadyOwnedByYou":
                raise

    def put(self, name: str, payload: bytes, content_type: str) -> None:
        if len(payload) <= _MULTIPART_BYTES:
            self._s3().put_object(
                Bucket=self._settings.bucket, Key=name, Body=payload, ContentType=content_type
            )
            return
        from boto3.s3.transfer import TransferConfig

        self._s3().upload_fileobj(
            io.BytesIO(payload),
            self._settings.bucket,
            name,
            ExtraArgs={"ContentType": content_type},
            # Sequential parts: the upload is retried as a whole by the store's policy.
            Config=TransferConfig(
                multipart_threshold=_MULTIPART_BYTES,
                multipart_chunksize=_MULTIPART_BYTES,
                use_threads=False,
            ),
        )

    def get(self, name: str) -> bytes:
        body = self._s3().get_object(Bucket=self._settings.bucket, Key=name)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, name: str) -> bool:
        try:
            self._s3().head_object(Bucket=self._settings.bucket, Key=name)
        except Exception as error:
            if self.is_not_found(error):
                return False
            raise
        return True

    def open_chunks(self, name: str) -> Iterator[bytes]:
        # GetObject answers NoSuchKey before any body, so a missing object fails here.
        body = self._s3().get_object(Bucket=self._settings.bucket, Key=name)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_BYTES)
            finally:
                body.close()

        return chunks()

    def delete(self, name: str) -> None:
        # S3's DeleteObject succeeds for a missing key: idempotent by the API itself.
        self._s3().delete_object(Bucket=self._settings.bucket, Key=name)
