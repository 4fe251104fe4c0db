"""The wake-up message and the publishers that carry it: Pub/Sub, or a Redis stream.

A message only says "look at job X": the database row is the truth, so a lost message costs
a sweep interval and a duplicate costs a refused claim, nothing more. Everything that wakes
dispatch (submit, the sweep) asks :func:`publisher_for` for a :class:`Publisher`;
``PODSCRIBE_WAKEUP_BACKEND`` chooses Pub/Sub (:class:`JobPublisher`, whose client is built
on first use and honours ``PUBSUB_EMULATOR_HOST`` itself) or a Redis stream
(:class:`podscribe.wakeup_streams.StreamPublisher`).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from podscribe.errors import MalformedMessageError, PublishError
from podscribe.settings import MessagingSettings, Settings

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient


@dataclass(frozen=True)
class JobMessage:
    """``{"job_id": "<uuid>"}``: the body of a wake-up."""

    job_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> JobMessage:
        """Raises MalformedMessageError unless ``data`` is ``{"job_id": <uuid string>}``."""
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
            raise MalformedMessageError(f"expected {{'job_id': <uuid>}}, got {data!r:.200}")
        try:
            job_id = str(uuid.UUID(data["job_id"]))
        except ValueError:
            raise MalformedMessageError(f"job_id is not a UUID: {data['job_id']!r:.100}") from None
        return cls(job_id=job_id)

    @classmethod
    def from_bytes(cls, payload: bytes) -> JobMessage:
        try:
            return cls.from_dict(json.loads(payload.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MalformedMessageError(f"not JSON: {error}") from None

    @classmethod
    def from_pubsub_envelope(cls, message: Any) -> JobMessage:
        """From a CloudEvent's ``data['message']`` (base64 ``data`` field)."""
        if not isinstance(message, dict) or not isinstance(message.get("data"), str):
            raise MalformedMessageError("no message.data in the Pub/Sub event")
        try:
            payload = base64.b64decode(message["data"], validate=True)
        except ValueError:
            raise MalformedMessageError("message.data is not base64") from None
        return cls.from_bytes(payload)


class Publisher(Protocol):
    """Sends wake-ups to dispatch, whatever carries them."""

    def publish(self, message: JobMessage) -> str:
        """Send one wake-up and wait until the carrier holds it.

        Returns:
            The carrier's id for it.

        Raises:
            PublishError: it could not be sent in time (the sweep sends it again).
        """
        ...


def publisher_for(settings: Settings, *, timeout: float = 10.0) -> Publisher:
    """The publisher ``PODSCRIBE_WAKEUP_BACKEND`` names, built from the settings.

    Args:
        settings: the backend and its settings.
        timeout: seconds one publish may wait for the carrier.

    Raises:
        SettingsError: the backend's required settings are missing.
    """
    if settings.wakeup_backend == "redis-streams":
        from podscribe.wakeup_streams import StreamPublisher, wakeup_redis_url

        wakeup_redis_url(settings)  # refuse a missing Redis now, not on the first publish
        return StreamPublisher(settings, timeout=timeout)
    return JobPublisher(settings, timeout=timeout)


class JobPublisher:
    """Publishes wake-ups to the jobs topic on Pub/Sub.

    Args:
        settings: ``project_id`` and ``pubsub_topic`` are read.
        client: an existing ``PublisherClient`` (built on first use when omitted).
        timeout: seconds to wait for the server's acknowledgement.
    """

    def __init__(
        self,
        settings: MessagingSettings,
        *,
        client: PublisherClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._settings = settings
        self._client = client
        self._timeout = timeout
        self._lock = threading.Lock()

    @property
    def topic_path(self) -> str:
        return f"projects/{self._settings.project_id}/topics/{self._settings.pubsub_topic}"

    def _publisher(self) -> PublisherClient:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, message: JobMessage) -> str:
        """Publish and wait for the server's id.

        Raises:
            PublishError: the topic could not be reached in time.
        """
        try:
            future = self._publisher().publish(
                self.topic_path, message.to_bytes(), job_id=message.job_id
            )
            return str(future.result(timeout=self._timeout))
        except Exception as error:
            raise PublishError(f"publishing to {self.topic_path} failed: {error}") from error
