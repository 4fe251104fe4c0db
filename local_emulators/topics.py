"""The local profile's Pub/Sub wiring on the emulator: topics and push subscriptions.

The same shape as Terraform's: the jobs topic pushes to dispatch with a dead-letter topic
after five deliveries, and the sweep topic pushes to the sweep target.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from podscribe.settings import MessagingSettings

JOBS_TOPIC_DEAD_LETTER_SUFFIX = "-dead-letter"
SWEEP_TOPIC = "podscribe-sweep"


def create_pubsub_resources(
    settings: MessagingSettings, dispatch_port: int, sweep_port: int
) -> None:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

    publisher, subscriber = PublisherClient(), SubscriberClient()
    project = settings.project_id
    jobs_topic = publisher.topic_path(project, settings.pubsub_topic)
    dead_letter = publisher.topic_path(
        project, settings.pubsub_topic + JOBS_TOPIC_DEAD_LETTER_SUFFIX
    )
    sweep_topic = publisher.topic_path(project, SWEEP_TOPIC)
    for topic in (jobs_topic, dead_letter, sweep_topic):
        _ignore_exists(partial(publisher.create_topic, name=topic))
    subscriptions = {
        "podscribe-dispatch": {
            "topic": jobs_topic,
            "push_config": {
                "push_endpoint": f"http://127.0.0.1:{dispatch_port}/{jobs_topic}",
            },
            "dead_letter_policy": {"dead_letter_topic": dead_letter, "max_delivery_attempts": 5},
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 30}},
            "ack_deadline_seconds": 60,
        },
        "podscribe-dead-letter": {"topic": dead_letter},
        "podscribe-sweep": {
            "topic": sweep_topic,
            "push_config": {"push_endpoint": f"http://127.0.0.1:{sweep_port}/{sweep_topic}"},
        },
    }
    for name, request in subscriptions.items():
        path = subscriber.subscription_path(project, name)
        _ignore_exists(partial(subscriber.create_subscription, request={"name": path, **request}))


def _ignore_exists(action: Any) -> None:
    from google.api_core.exceptions import AlreadyExists

    try:
        action()
    except AlreadyExists:
        return
