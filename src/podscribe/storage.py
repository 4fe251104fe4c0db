"""Transcripts and checkpoints in a bucket: Cloud Storage or any S3 API.

:class:`TranscriptStore` is the one thing callers use; ``PODSCRIBE_STORAGE_BACKEND`` picks
what it sits on (:mod:`podscribe.storage_backends`: ``gcs``, the default, or ``s3``).
Transient faults (throttling, 5xx, dropped connections) are retried here, with bounded
exponential backoff from ``podscribe.retry``, the same way on both; what still fails
surfaces as :class:`~podscribe.errors.StorageError`, and a missing object as
:class:`FileNotFoundError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tenacity import RetryError

from podscribe.errors import StorageError
from podscribe.retry import retrying
from podscribe.settings import StorageSettings
from podscribe.storage_backends import ObjectBackend

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


def transcript_file_extension(fmt: str) -> str:
    """A format's file extension: its name, but ``podcast.json`` for ``podcast-json``."""
    return _FILE_EXTENSIONS.get(fmt, fmt)


def transcript_object_name(job_id: str, fmt: str) -> str:
    """``transcripts/<job id>/transcript.<ext>``: where a finished transcript lives."""
    return f"transcripts/{job_id}/transcript.{transcript_file_extension(fmt)}"


def checkpoint_object_name(job_id: str) -> str:
    """Where a running job keeps the segments it has finished so far."""
    return f"transcripts/{job_id}/checkpoint.json"


def backend_for(settings: StorageSettings) -> ObjectBackend:
    """The backend ``settings.storage_backend`` names (its client is built on first use)."""
    if settings.storage_backend == "s3":
        from podscribe.storage_backends.s3 import S3Backend

        return S3Backend(settings)
    from podscribe.storage_backends.gcs import GcsBackend

    return GcsBackend(settings)


class TranscriptStore:
    """The transcripts bucket.

    Args:
        settings: the bucket and the backend's settings.
        backend: an existing backend (built from ``settings`` when omitted).
        attempts: tries per operation for transient faults.
    """

    def __init__(
        self,
        settings: StorageSettings,
        *,
        backend: ObjectBackend | None = None,
        attempts: int = 5,
    ):
        self._settings = settings
        self._backend = backend or backend_for(settings)
        self._attempts = attempts

    @property
    def bucket_name(self) -> str:
        return self._settings.bucket

    def _retrying(self, operation: str, action: Callable[[], T]) -> T:
        backend = self._backend
        policy = retrying(
            attempts=self._attempts,
            initial_seconds=0.2,
            max_seconds=5,
            retry_on=backend.is_transient,
            reraise=False,
        )
        try:
            return policy(action)
        except RetryError as error:
            last = error.last_attempt.exception()
            raise StorageError(
                f"{operation} on {backend.location} failed after {self._attempts} tries: {last}"
            ) from last
        except Exception as error:
            raise self._translated(operation, error) from error

    def _translated(self, operation: str, error: Exception) -> Exception:
        """A backend's error as the store's: FileNotFoundError, StorageError, or itself."""
        backend = self._backend
        if backend.is_not_found(error):
            return FileNotFoundError(f"{backend.location}: {error}")
        if backend.is_backend_error(error) or backend.is_transient(error):
            return StorageError(f"{operation} on {backend.location}: {error}")
        return error

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (local profile and tests)."""
        self._retrying("create bucket", self._backend.ensure_bucket)

    def put(self, name: str, data: bytes | str, content_type: str) -> str:
        """Write an object (whole; overwrites). Returns its name.

        Raises:
            StorageError: storage kept failing, or the bucket does not exist (not provisioned
                yet, or lost with its server): a write has no missing object to report, so
                "not found" here is storage being unavailable, never ``FileNotFoundError``.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else data
        try:
            self._retrying(f"upload {name}", lambda: self._backend.put(name, payload, content_type))
        except FileNotFoundError as error:
            raise StorageError(f"upload {name}: the bucket does not exist: {error}") from error
        return name

    def get(self, name: str) -> bytes:
        """Read a whole object. Raises FileNotFoundError when it does not exist."""
        return self._retrying(f"download {name}", lambda: self._backend.get(name))

    def exists(self, name: str) -> bool:
        return self._retrying(f"stat {name}", lambda: self._backend.exists(name))

    def stream(self, name: str) -> Iterator[bytes]:
        """Yield an object in chunks, so large transcripts never sit whole in memory.

        Opening and the first chunk are retried, and read before this returns: a WSGI server
        sends the headers with the first bytes, so a fault there, raised while the response
        is iterated, would be a bare 500 instead of the caller's problem answer. A fault after
        the first chunk is not retried (the caller has already passed bytes on) and surfaces
        as StorageError.

        Raises:
            FileNotFoundError: the object does not exist (checked before the first chunk).
            StorageError: storage failed before the first chunk, every try.
        """

        def opened() -> tuple[bytes, Iterator[bytes]]:
            chunks = self._backend.open_chunks(name)
            return next(chunks, b""), chunks

        first, chunks = self._retrying(f"open {name}", opened)

        def translated() -> Iterator[bytes]:
            if first:
                yield first
            try:
                yield from chunks
            except Exception as error:
                raise self._translated(f"read {name}", error) from error

        return translated()

    def delete(self, name: str) -> None:
        """Delete an object; a missing one is not an error."""
        try:
            self._retrying(f"delete {name}", lambda: self._backend.delete(name))
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
