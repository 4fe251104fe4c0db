"""Running the submit function for tests and benchmarks: environment, topics, processes.

Shared by the submit, rate-limit and OpenAPI tests and by ``benchmarks/api.py``: the same
``functions-framework`` command line the local profile and Cloud Functions use.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_emulators.processes import Started, port_open, start_process, stop_group, wait_until
from tests.services import REDIS_URL, free_port, missing_service

ROOT = Path(__file__).resolve().parents[2]
SUBMIT_SOURCE = ROOT / "functions" / "submit" / "main.py"
API_KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-fedcba9876543210"
EPISODE_URL = "https://podcasts.apple.com/us/podcast/some-show/id1535809341?i=1000651234567"
EPISODE_SPELLINGS = (
    EPISODE_URL,
    "https://podcasts.apple.com/gb/podcast/another-slug/id1535809341?i=1000651234567&l=en",
    "podcasts.apple.com/podcast/id1535809341?i=1000651234567",
    "itms-podcasts://podcasts.apple.com/us/podcast/x/id1535809341?i=1000651234567",
    "https://podcasts.apple.com/us/podcast/some-show/id1535809341?uo=4&i=1000651234567",
)


def episode_url(collection_id: int = 1535809341, episode_id: int = 1000651234567) -> str:
    return f"https://podcasts.apple.com/us/podcast/show/id{collection_id}?i={episode_id}"


def submit_environment(
    *,
    database_url: str,
    project: str,
    topic: str,
    pubsub_host: str | None = None,
    storage_url: str | None = None,
    bucket: str = "podscribe-test-transcripts",
    **overrides: str,
) -> dict[str, str]:
    """The ``PODSCRIBE_*`` variables of a submit function under test."""
    env = {
        "PODSCRIBE_ENV": "test",
        "PODSCRIBE_DATABASE_URL": database_url,
        "PODSCRIBE_PROJECT_ID": project,
        "PODSCRIBE_PUBSUB_TOPIC": topic,
        "PODSCRIBE_API_KEYS": f"{API_KEY},{OTHER_KEY}",
        "PODSCRIBE_BUCKET": bucket,
        "PODSCRIBE_PUBLISH_TIMEOUT_SECONDS": "2",
        "PODSCRIBE_ALLOWED_MODELS": "tiny.en,base.en",
        "PODSCRIBE_LOG_LEVEL": "WARNING",
        # Tests that submit hundreds of jobs from one key; the budget tests set their own.
        "PODSCRIBE_KEY_MAX_ACTIVE_JOBS": "100000",
        "PODSCRIBE_KEY_LAUNCHES_PER_HOUR": "100000",
    }
    if pubsub_host:
        env["PUBSUB_EMULATOR_HOST"] = pubsub_host
    if storage_url:
        env["STORAGE_EMULATOR_HOST"] = storage_url
    env.update(overrides)
    return env


def limited_submit_environment(
    *,
    database_url: str,
    project: str,
    topic: str,
    pubsub_host: str | None = None,
    storage_url: str | None = None,
    rate_limit: str = "1000",
    **overrides: str,
) -> dict[str, str]:
    """:func:`submit_environment` on the shared Redis, with generous limits and counters of its own.

    A fresh ``PODSCRIBE_RATE_LIMIT_PREFIX`` keeps the test's counters apart from every other
    test's; keyword arguments are those of :func:`submit_environment`, and variables given
    win over the defaults here.
    """
    if not port_open("127.0.0.1", 6379):
        missing_service("Redis on 127.0.0.1:6379")
    limits = {
        "PODSCRIBE_REDIS_URL": REDIS_URL,
        "PODSCRIBE_RATE_LIMIT_PREFIX": f"test:{uuid.uuid4().hex[:12]}:",
        "PODSCRIBE_RATE_LIMIT_PER_KEY": rate_limit,
        "PODSCRIBE_RATE_LIMIT_PER_IP": rate_limit,
    }
    return submit_environment(
        database_url=database_url,
        project=project,
        topic=topic,
        pubsub_host=pubsub_host,
        storage_url=storage_url,
        **{**limits, **overrides},
    )


@contextmanager
def applied_environment(monkeypatch: Any, env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The variables set for one test (``monkeypatch`` undoes them), settings read afresh."""
    from podscribe.settings import get_settings

    _apply(monkeypatch, env)
    try:
        yield dict(env)
    finally:
        get_settings.cache_clear()


@contextmanager
def api_environment(
    monkeypatch: Any,
    *,
    database_url: str,
    pubsub_host: str,
    storage_url: str,
    topic: str | None = None,
) -> Iterator[dict[str, str]]:
    """The submit function's variables for one test: the emulators, the shared Redis with
    counters of its own, a fresh topic unless one is given."""
    from tests.conftest import TEST_PROJECT

    env = limited_submit_environment(
        database_url=database_url,
        project=TEST_PROJECT,
        topic=topic or create_topic_and_subscription(TEST_PROJECT)[0],
        pubsub_host=pubsub_host,
        storage_url=storage_url,
    )
    with applied_environment(monkeypatch, env) as applied:
        yield applied


def submit_test_client(monkeypatch: Any, **env: str) -> Any:
    """functions-framework's test client of the real submit entry point, ``env`` applied."""
    from functions_framework import create_app

    _apply(monkeypatch, env)
    return create_app("submit", str(SUBMIT_SOURCE), "http").test_client()


def _apply(monkeypatch: Any, env: Mapping[str, str]) -> None:
    from podscribe.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def create_topic_and_subscription(project: str) -> tuple[str, str]:
    """A fresh topic and a pull subscription on the emulator; returns (topic id, sub path)."""
    from google.cloud import pubsub_v1

    topic = f"jobs-{uuid.uuid4().hex[:10]}"
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(project, topic)
    subscription = subscriber.subscription_path(project, f"{topic}-sub")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription, topic=topic_path)
    return topic, subscription


def pull_job_ids(subscription: str, *, timeout: float = 10) -> list[str]:
    """Pull (and acknowledge) what arrived on a subscription; the job ids in order."""
    from google.cloud import pubsub_v1

    from podscribe.messaging import JobMessage

    subscriber = pubsub_v1.SubscriberClient()
    response = subscriber.pull(subscription=subscription, max_messages=50, timeout=timeout)
    if response.received_messages:
        subscriber.acknowledge(
            subscription=subscription,
            ack_ids=[received.ack_id for received in response.received_messages],
        )
    return [JobMessage.from_bytes(item.message.data).job_id for item in response.received_messages]


def functions_framework_binary() -> str:
    candidate = Path(sys.executable).with_name("functions-framework")
    found = str(candidate) if candidate.exists() else shutil.which("functions-framework")
    if not found:
        raise FileNotFoundError("functions-framework is not installed")
    return found


@dataclass(frozen=True)
class RunningFunction:
    """A functions-framework process on 127.0.0.1."""

    url: str
    started: Started


@contextmanager
def functions_framework_process(
    source: Path,
    target: str,
    env: Mapping[str, str],
    log_path: Path,
    *,
    ready_path: str = "/healthz",
    threads: int | None = None,
) -> Iterator[RunningFunction]:
    """Run ``functions-framework --target <target> --source <source>`` until the block ends."""
    port = free_port()
    full_env = {**os.environ, **env}
    if threads is not None:
        full_env["THREADS"] = str(threads)
    argv = [
        functions_framework_binary(),
        "--target",
        target,
        "--source",
        str(source),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    started = start_process(f"functions-framework {target}", argv, log_path=log_path, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            f"functions-framework {target} on {url}",
            lambda: _answers(f"{url}{ready_path}"),
            timeout=60,
            started=started,
        )
        yield RunningFunction(url=url, started=started)
    finally:
        stop_group(started.pid)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= int(response.status) < 500
    except OSError:
        return False


@contextmanager
def own_redis_server(log_path: Path) -> Iterator[tuple[int, Started]]:
    """A redis-server of the test's own on a free loopback port (never the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed")
    port = free_port()
    started = start_redis(binary, port, log_path)
    try:
        yield port, started
    finally:
        stop_group(started.pid, grace_seconds=3)


def start_redis(binary: str, port: int, log_path: Path) -> Started:
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    started = start_process("redis-server", argv, log_path=log_path)
    wait_until(f"redis-server on {port}", lambda: _redis_ping(port), timeout=10, started=started)
    return started


def _redis_ping(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False
