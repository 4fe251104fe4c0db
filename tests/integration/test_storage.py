"""TranscriptStore against fake-gcs-server, through the real google-cloud-storage client."""

from __future__ import annotations

import uuid

import pytest

from podscribe.errors import StorageError
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore, transcript_object_name
from tests.services import free_port


@pytest.fixture
def store(gcs_emulator: str) -> TranscriptStore:
    store = TranscriptStore(load_settings(env="test", bucket=f"t-{uuid.uuid4().hex[:10]}"))
    store.ensure_bucket()
    return store


def test_put_get_stream_and_delete(store: TranscriptStore) -> None:
    name = transcript_object_name("job-1", "vtt")
    assert name == "transcripts/job-1/transcript.vtt"
    body = "WEBVTT\n\n" + "00:00.000 --> 00:01.000\nhello\n\n" * 20000
    store.put(name, body, "text/vtt")
    assert store.exists(name)
    assert store.get(name) == body.encode()
    chunks = list(store.stream(name))
    assert len(chunks) > 1  # streamed, not read whole
    assert b"".join(chunks) == body.encode()
    store.delete(name)
    assert not store.exists(name)
    store.delete(name)  # twice is harmless


def test_missing_objects_are_file_not_found(store: TranscriptStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get("transcripts/nope/transcript.txt")
    with pytest.raises(FileNotFoundError):
        store.stream("transcripts/nope/transcript.txt")


def test_ensure_bucket_twice_is_harmless(store: TranscriptStore) -> None:
    store.ensure_bucket()
    store.put("a", b"x", "text/plain")
    assert store.get("a") == b"x"


def test_an_unreachable_server_is_a_storage_error_after_retries(
    gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment variable is Google's, not ours: point the real client at a dead port.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    store = TranscriptStore(load_settings(env="test", bucket="dead-bucket"), attempts=2)
    with pytest.raises(StorageError, match="failed after 2 tries"):
        store.put("x", b"y", "text/plain")
