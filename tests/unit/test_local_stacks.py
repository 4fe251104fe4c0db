"""What the two local stacks wire up, and when the stream consumer counts as serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local_emulators.stacks import (
    STACKS,
    as_stack,
    consumer_serving,
    stack_ports,
    stack_wiring,
    wakeup_stream_name,
)
from podscribe.settings import load_settings


def test_selfhosted_points_every_part_at_s3_and_its_own_stream() -> None:
    settings = load_settings(env="local", local_s3_port=9555)
    wiring = stack_wiring(settings, "selfhosted", "ab12cd34")
    assert wiring["PODSCRIBE_STORAGE_BACKEND"] == "s3"
    assert wiring["PODSCRIBE_S3_ENDPOINT_URL"] == "http://127.0.0.1:9555"
    assert wiring["AWS_ACCESS_KEY_ID"] and wiring["AWS_SECRET_ACCESS_KEY"]
    assert wiring["PODSCRIBE_WAKEUP_BACKEND"] == "redis-streams"
    assert wiring["PODSCRIBE_WAKEUP_STREAM"] == wakeup_stream_name("ab12cd34")
    assert wakeup_stream_name("ab12cd34") != wakeup_stream_name("ef56ab78")
    assert not {"PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"} & set(wiring)
    # The wiring is a valid configuration for the parts.
    wired = load_settings(
        env="local",
        storage_backend="s3",
        s3_endpoint_url=wiring["PODSCRIBE_S3_ENDPOINT_URL"],
        wakeup_backend="redis-streams",
        wakeup_stream=wiring["PODSCRIBE_WAKEUP_STREAM"],
    )
    assert wired.wakeup_stream == wiring["PODSCRIBE_WAKEUP_STREAM"]
    assert set(stack_ports(settings, "selfhosted")) == {"moto's S3 server"}


def test_gcp_names_both_backends_so_a_stray_variable_cannot_split_the_parts() -> None:
    settings = load_settings(env="local", local_pubsub_port=8123, local_gcs_port=4123)
    wiring = stack_wiring(settings, "gcp", "ab12cd34")
    assert wiring == {
        "PODSCRIBE_STORAGE_BACKEND": "gcs",
        "PODSCRIBE_WAKEUP_BACKEND": "pubsub",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8123",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4123",
    }
    assert {port for port, _ in stack_ports(settings, "gcp").values()} >= {8123, 4123}


def test_stack_names() -> None:
    assert STACKS == ("gcp", "selfhosted")
    assert [as_stack(name) for name in STACKS] == list(STACKS)
    with pytest.raises(ValueError, match="unknown stack"):
        as_stack("aws")


def test_the_consumer_serves_once_it_logged_consuming_under_its_own_name(tmp_path: Path) -> None:
    log = tmp_path / "dispatch.log"
    assert not consumer_serving(log, "local-1")
    ready = {"severity": "INFO", "message": "consuming wake-ups", "consumer": "local-0"}
    log.write_text(json.dumps(ready) + "\nnot json: consuming wake-ups\n")
    assert not consumer_serving(log, "local-1")  # an earlier run's line does not count
    with log.open("a") as handle:
        handle.write(json.dumps(ready | {"consumer": "local-1"}) + "\n")
    assert consumer_serving(log, "local-1")
