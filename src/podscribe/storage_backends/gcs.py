"""Cloud Storage through google-cloud-storage.

The client is built on first use, never at import, and honours ``STORAGE_EMULATOR_HOST``
itself (fake-gcs-server in the local profile and tests). Its own retry is turned off
(``retry=None`` on every call): ``podscribe.retry`` in the store is the one retry policy, so
an outage costs a bounded, known time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from podscribe.settings import StorageSettings
from podscribe.storage_backends import CHUNK_BYTES

if TYPE_CHECKING:
    from google.cloud.storage import Bucket, Client

__all__ = ["GcsBackend"]

# (connect, read) seconds per HTTP call.
_TIMEOUT = (5.0, 60.0)


class GcsBackend:
    """A Cloud Storage bucket.

    Args:
        settings: ``bucket`` and ``project_id`` are read.
        client: an existing ``google.cloud.storage.Client`` (built on first use when omitted).
    """

    def __init__(self, settings: StorageSettings, *, client: Client | None = None):
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"gs://{self._settings.bucket}"

    def _bucket(self) -> Bucket:
        with self._lock:
            if self._client is None:
                from google.cloud.storage import Client

                self._client = Client(project=self._settings.project_id)
            return self._client.bucket(self._settings.bucket)

    def is_transient(self, error: BaseException) -> bool:
        from google.api_core import exceptions as api_exceptions
        from requests import exceptions as requests_exceptions

        return isinstance(
            error,
            (
                api_exceptions.TooManyRequests,
                api_exceptions.InternalServerError,
                api_exceptions.BadGateway,
                api_exceptions.ServiceUnavailable,
                api_exceptions.GatewayTimeout,
                requests_exceptions.ConnectionError,
                requests_exceptions.Timeout,
                ConnectionError,
                TimeoutError,
            ),
        )

    def is_not_found(self, error: BaseException) -> bool:
        from google.api_core import exceptions as api_exceptions

        return isinstance(error, api_exceptions.NotFound)

    def is_backend_error(self, error: BaseException) -> bool:
        from google.api_core import exceptions as api_exceptions

        return isinstance(error, api_exceptions.GoogleAPIError)

    def ensure_bucket(self) -> None:
        from google.api_core import exceptions as api_exceptions

        bucket = self._bucket()
        if bucket.exists(retry=None, timeout=_TIMEOUT):
            return
        try:
            bucket.create(retry=None, timeout=_TIMEOUT)
        except api_exceptions.Conflict:
            return  # created meanwhile by another process

    def put(self, name: str, payload: bytes, content_type: str) -> None:
        # The client switches to a resumable, chunked upload above 8 MiB by itself.
        self._bucket().blob(name).upload_from_string(
            payload, content_type=content_type, retry=None, timeout=_TIMEOUT
        )

    def get(self, name: str) -> bytes:
        data: bytes = self._bucket().blob(name).download_as_bytes(retry=None, timeout=_TIMEOUT)
        return data

    def exists(self, name: str) -> bool:
        return bool(self._bucket().blob(name).exists(retry=None, timeout=_TIMEOUT))

    def open_chunks(self, name: str) -> Iterator[bytes]:
        blob = self._bucket().blob(name)
        blob.reload(retry=None, timeout=_TIMEOUT)  # NotFound now, not in the middle of a read
        reader = blob.open("rb", chunk_size=CHUNK_BYTES, retry=None)

        def chunks() -> Iterator[bytes]:
            with reader:
                while chunk := reader.read(CHUNK_BYTES):
                    yield chunk

        return chunks()

    def delete(self, name: str) -> None:
        self._bucket().blob(name).delete(retry=None, timeout=_TIMEOUT)
