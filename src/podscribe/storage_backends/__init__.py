"""The object stores a :class:`~podscribe.storage.TranscriptStore` can sit on.

Each backend does one store's I/O and says which of its errors are worth another try and
which mean "no such object"; the store owns the retry policy (``podscribe.retry``), the
error translation and the object names, so both backends behave the same to every caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

__all__ = ["CHUNK_BYTES", "ObjectBackend"]

CHUNK_BYTES = 256 * 1024
"""The largest chunk a stream yields: big enough to be cheap, small enough to never matter."""


class ObjectBackend(Protocol):
    """One bucket's objects: whole puts and gets, stats, chunked reads and deletes.

    Methods raise the client library's own errors; the store retries those that
    :meth:`is_transient` accepts and maps the rest through :meth:`is_not_found`.
    """

    @property
    def location(self) -> str:
        """The bucket as a URL (``gs://name``, ``s3://name``), for messages."""
        ...

    def is_transient(self, error: BaseException) -> bool:
        """Throttling, a server fault or a dropped connection: worth another try."""
        ...

    def is_not_found(self, error: BaseException) -> bool:
        """The object (or the bucket) does not exist."""
        ...

    def is_backend_error(self, error: BaseException) -> bool:
        """Any other error of the store's client library (a refusal, a bad request)."""
        ...

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; safe to call again or concurrently."""
        ...

    def put(self, name: str, payload: bytes, content_type: str) -> None:
        """Write a whole object, replacing any old one."""
        ...

    def get(self, name: str) -> bytes:
        """Read a whole object."""
        ...

    def exists(self, name: str) -> bool:
        """Whether the object exists."""
        ...

    def open_chunks(self, name: str) -> Iterator[bytes]:
        """Open an object for reading, failing now when it is missing, and return an
        iterator of chunks of at most :data:`CHUNK_BYTES` that closes the response when done.
        """
        ...

    def delete(self, name: str) -> None:
        """Delete an object (a missing one may raise not-found or succeed)."""
        ...
