"""Publishing wake-ups through the real client to the Pub/Sub emulator."""

from __future__ import annotations

import base64
import uuid

import pytest
from google.cloud import pubsub_v1

from podscribe.errors import MalformedMessageError, PublishError
from podscribe.messaging import JobMessage, JobPublisher
from podscribe.settings import load_settings
from tests.conftest import TEST_PROJECT
from tests.services import free_port


def test_a_published_wake_up_arrives_on_a_subscription(pubsub_emulator: str) -> None:
    topic = f"jobs-{uuid.uuid4().hex[:8]}"
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(TEST_PROJECT, topic)
    subscription = subscriber.subscription_path(TEST_PROJECT, f"{topic}-sub")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription, topic=topic_path)
    job_id = str(uuid.uuid4())
    settings = load_settings(env="test", project_id=TEST_PROJECT, pubsub_topic=topic)
    message_id = JobPublisher(settings).publish(JobMessage(job_id))
    assert message_id
    response = subscriber.pull(subscription=subscription, max_messages=5, timeout=10)
    assert len(response.received_messages) == 1
    received = response.received_messages[0].message
    assert JobMessage.from_bytes(received.data) == JobMessage(job_id)
    assert received.attributes["job_id"] == job_id


def test_an_unreachable_topic_is_a_publish_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    settings = load_settings(env="test", project_id=TEST_PROJECT)
    with pytest.raises(PublishError, match="publishing to projects/podscribe-test/topics"):
        JobPublisher(settings, timeout=1).publish(JobMessage(str(uuid.uuid4())))


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"job_id": 5}', b'{"job_id": "x"}', b'{"id": "a"}', b"\xff"],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        JobMessage.from_bytes(payload)


def test_pubsub_envelopes_decode() -> None:
    job_id = str(uuid.uuid4())
    data = base64.b64encode(JobMessage(job_id).to_bytes()).decode()
    assert JobMessage.from_pubsub_envelope({"data": data}).job_id == job_id
    with pytest.raises(MalformedMessageError):
        JobMessage.from_pubsub_envelope({"data": "!!!"})
    with pytest.raises(MalformedMessageError):
        JobMessage.from_pubsub_envelope({})
