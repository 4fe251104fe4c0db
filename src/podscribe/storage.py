"""Transcripts and checkpoints in Cloud Storage.

The Google client is built on first use, never at import, and honours
``STORAGE_EMULATOR_HOST`` itself (fake-gcs-server in the local profile and tests). Transient
faults (429, 5xx, dropped connections) are retried with bounded exponential backoff; what
still fails surfaces as :class:`~podscribe.errors.StorageError`, and a missing object as
:class:`FileNotFoundError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import RetryError

from podscribe.errors import StorageError
from podscribe.retry import retrying
from podscribe.settings import StorageSettings

if TYPE_CHECKING:
    from google.cloud.storage import Bucket, Client

T = TypeVar("T")

TRANSCRIPT_FORMATS: dict[str, str] = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
    "txt": "text/plain",
    "html": "text/html",
    "podcast-json": "application/json",
}
"""Transcript formats and the content type each is stored and served with."""

_FILE_EXTENSIONS = {"podcast-json": "podcast.json"}

_CHUNK_BYTES = 256 * 1024
# (connect, read) seconds per HTTP call. The client's own retry is turned off (retry=None):
# podscribe.retry below is the one retry policy, so an outage costs a bounded, known time.
_TIMEOUT = (5.0, 60.0)


def transcript_file_extension(fmt: str) -> str:
    """A format's file extension: its name, but ``podcast.json`` for ``podcast-json``."""
    return _FILE_EXTENSIONS.get(fmt, fmt)


def transcript_object_name(job_id: str, fmt: str) -> str:
    """``transcripts/<job id>/transcript.<ext>``: where a finished transcript lives."""
    return f"transcripts/{job_id}/transcript.{transcript_file_extension(fmt)}"


def checkpoint_object_name(job_id: str) -> str:
    """Where a running job keeps the segments it has finished so far."""
    return f"transcripts/{job_id}/checkpoint.json"


def _is_transient(error: BaseException) -> bool:
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


class TranscriptStore:
    """The transcripts bucket.

    Args:
        settings: ``bucket`` and ``project_id`` are read.
        client: an existing ``google.cloud.storage.Client`` (built on first use when omitted).
        attempts: tries per operation for transient faults.
    """

    def __init__(
        self, settings: StorageSettings, *, client: Client | None = None, attempts: int = 5
    ):
        self._settings = settings
        self._client = client
        self._attempts = attempts
        self._lock = threading.Lock()

    @property
    def bucket_name(self) -> str:
        return self._settings.bucket

    def _bucket(self) -> Bucket:
        with self._lock:
            if self._client is None:
                from google.cloud import storage

                self._client = storage.Client(project=self._settings.project_id)
            return self._client.bucket(self._settings.bucket)

    def _retrying(self, operation: str, action: Callable[[], T]) -> T:
        # Google's own faults, not podscribe's: the client raises them before we can translate.
        policy = retrying(
            attempts=self._attempts,
            initial_seconds=0.2,
            max_seconds=5,
            retry_on=_is_transient,
            reraise=False,
        )
        try:
            return policy(action)
        except RetryError as error:
            last = error.last_attempt.exception()
            raise StorageError(
                f"{operation} on gs://{self.bucket_name} failed after {self._attempts} tries: "
                f"{last}"
            ) from last
        except Exception as error:
            from google.api_core import exceptions as api_exceptions

            if isinstance(error, api_exceptions.NotFound):
                raise FileNotFoundError(f"gs://{self.bucket_name}: {error}") from error
            if isinstance(error, api_exceptions.GoogleAPIError):
                raise StorageError(f"{operation} on gs://{self.bucket_name}: {error}") from error
            raise

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (local profile and tests)."""

        def create() -> None:
            bucket = self._bucket()
            if not bucket.exists(retry=None, timeout=_TIMEOUT):
                bucket.create(retry=None, timeout=_TIMEOUT)

        self._retrying("create bucket", create)

    def put(self, name: str, data: bytes | str, content_type: str) -> str:
        """Write an object (whole; overwrites). Returns its name."""
        payload = data.encode("utf-8") if isinstance(data, str) else data

        def upload() -> None:
            blob = self._bucket().blob(name)
            blob.upload_from_string(
                payload, content_type=content_type, retry=None, timeout=_TIMEOUT
            )

        self._retrying(f"upload {name}", upload)
        return name

    def get(self, name: str) -> bytes:
        """Read a whole object. Raises FileNotFoundError when it does not exist."""
        data: bytes = self._retrying(
            f"download {name}",
            lambda: self._bucket().blob(name).download_as_bytes(retry=None, timeout=_TIMEOUT),
        )
        return data

    def exists(self, name: str) -> bool:
        found: bool = self._retrying(
            f"stat {name}", lambda: self._bucket().blob(name).exists(retry=None, timeout=_TIMEOUT)
        )
        return found

    def stream(self, name: str) -> Iterator[bytes]:
        """Yield an object in chunks, so large transcripts never sit whole in memory.

        Raises:
            FileNotFoundError: the object does not exist (checked before the first chunk).
        """

        def open_existing() -> Any:
            blob = self._bucket().blob(name)
            blob.reload(
                retry=None, timeout=_TIMEOUT
            )  # NotFound now, not in the middle of a response
            return blob.open("rb")

        reader = self._retrying(f"open {name}", open_existing)

        def chunks() -> Iterator[bytes]:
            with reader:
                while chunk := reader.read(_CHUNK_BYTES):
                    yield chunk

        return chunks()

    def delete(self, name: str) -> None:
        """Delete an object; a missing one is not an error."""
        try:
            self._retrying(
                f"delete {name}",
                lambda: self._bucket().blob(name).delete(retry=None, timeout=_TIMEOUT),
            )
        except FileNotFoundError:
            return

    def delete_job_objects(self, job_id: str, recorded: Iterable[str] = ()) -> list[str]:
        """Delete every object a job may have written: each format, the checkpoint, and any
        other name its row recorded. Missing ones are not an error.

        Args:
            job_id: the job.
            recorded: object names the job's row points to (``transcript_objects`` values,
                ``checkpoint_object``), in case they differ from the standard names.

        Returns:
            The names deleted (or already absent), in order.

        Raises:
            StorageError: an object could not be deleted (after the retries).
        """
        standard = [transcript_object_name(job_id, fmt) for fmt in TRANSCRIPT_FORMATS]
        names = list(dict.fromkeys([*standard, checkpoint_object_name(job_id), *recorded]))
        for name in names:
            self.delete(name)
        return names
