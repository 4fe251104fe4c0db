"""Which publisher wakes dispatch, and the wake-up settings' validation (no network)."""

from __future__ import annotations

import pytest

from podscribe.errors import SettingsError
from podscribe.messaging import JobPublisher, publisher_for
from podscribe.settings import Settings, env_name, load_settings
from podscribe.wakeup_streams import StreamPublisher, wakeup_redis_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.delenv("PODSCRIBE_SECRETS_DIR", raising=False)


def test_pubsub_is_the_default_backend() -> None:
    settings = load_settings()
    assert settings.wakeup_backend == "pubsub"
    assert isinstance(publisher_for(settings), JobPublisher)


def test_redis_streams_is_chosen_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODSCRIBE_WAKEUP_BACKEND", "redis-streams")
    monkeypatch.setenv("PODSCRIBE_WAKEUP_STREAM", "team-a:jobs")
    monkeypatch.setenv("PODSCRIBE_WAKEUP_STREAM_MAX_LENGTH", "500")
    settings = load_settings()
    publisher = publisher_for(settings)
    assert isinstance(publisher, StreamPublisher)
    assert publisher.stream == "team-a:jobs"
    assert settings.wakeup_stream_max_length == 500


def test_the_stream_lives_in_the_rate_limits_redis_unless_told_otherwise() -> None:
    shared = load_settings(redis_url="redis://shared:6379/0")
    assert wakeup_redis_url(shared) == "redis://shared:6379/0"
    own = load_settings(redis_url="redis://shared:6379/0", wakeup_redis_url="redis://own:6379/2")
    assert wakeup_redis_url(own) == "redis://own:6379/2"


def test_redis_streams_without_any_redis_is_refused_when_the_publisher_is_built() -> None:
    settings = load_settings(wakeup_backend="redis-streams", redis_url=None)
    with pytest.raises(SettingsError, match="PODSCRIBE_WAKEUP_REDIS_URL"):
        publisher_for(settings)
    assert isinstance(publisher_for(settings.model_copy(update={"wakeup_backend": "pubsub"})),
                      JobPublisher)  # fmt: skip


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PODSCRIBE_WAKEUP_BACKEND", "kafka"),
        ("PODSCRIBE_WAKEUP_STREAM", ""),
        ("PODSCRIBE_WAKEUP_STREAM_MAX_LENGTH", "10"),
        ("PODSCRIBE_WAKEUP_BATCH_SIZE", "0"),
        ("PODSCRIBE_WAKEUP_BLOCK_SECONDS", "0"),
        ("PODSCRIBE_WAKEUP_CLAIM_IDLE_SECONDS", "-1"),
        ("PODSCRIBE_WAKEUP_MAX_DELIVERIES", "1"),
    ],
)
def test_malformed_wakeup_settings_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()
