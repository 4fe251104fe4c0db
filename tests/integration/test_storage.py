"""The storage contract: the same assertions against both backends, each through its real
client and a real server on 127.0.0.1 (fake-gcs-server for Cloud Storage, moto's S3 server).
"""

from __future__ import annotations

import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_emulators.emulators import start_fake_gcs, start_moto_s3
from local_emulators.processes import Started, stop_group
from podscribe.errors import StorageError
from podscribe.settings import Settings, load_settings
from podscribe.storage import (
    TRANSCRIPT_FORMATS,
    TranscriptStore,
    checkpoint_object_name,
    transcript_object_name,
)
from podscribe.storage_backends import CHUNK_BYTES
from tests.services import free_port
from tests.storage_support import BACKENDS, backend_overrides, s3_overrides

# Above both clients' single-request limit (8 MiB): a resumable upload on Cloud Storage,
# a multipart one on S3.
LARGE_BYTES = 9 * 1024 * 1024


@pytest.fixture(params=BACKENDS)
def bucket_settings(request: pytest.FixtureRequest) -> Callable[[str], Settings]:
    """Settings for a bucket on this run's backend, its server started for the session."""
    overrides = backend_overrides(request, request.param)
    return lambda bucket: load_settings(env="test", bucket=bucket, **overrides)


@pytest.fixture
def store(bucket_settings: Callable[[str], Settings]) -> TranscriptStore:
    store = TranscriptStore(bucket_settings(f"t-{uuid.uuid4().hex[:10]}"))
    store.ensure_bucket()
    return store


def test_put_get_exists_and_delete(store: TranscriptStore) -> None:
    name = transcript_object_name("job-1", "vtt")
    assert name == "transcripts/job-1/transcript.vtt"
    body = "WEBVTT\n\n" + "00:00.000 --> 00:01.000\nhello\n\n" * 20000
    assert store.put(name, body, "text/vtt") == name
    assert store.exists(name)
    assert store.get(name) == body.encode()
    store.put(name, b"replaced", "text/vtt")
    assert store.get(name) == b"replaced"
    store.delete(name)
    assert not store.exists(name)
    store.delete(name)  # twice is harmless


def test_a_large_object_goes_up_whole_and_comes_down_in_bounded_chunks(
    store: TranscriptStore,
) -> None:
    pattern = bytes(range(256))
    body = pattern * (LARGE_BYTES // len(pattern))
    store.put("large.bin", body, "application/octet-stream")

    tracemalloc.start()
    try:
        received, chunks = 0, 0
        for chunk in store.stream("large.bin"):
            assert 0 < len(chunk) <= CHUNK_BYTES
            assert chunk == body[received : received + len(chunk)]
            received += len(chunk)
            chunks += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == len(body)
    assert chunks >= len(body) // CHUNK_BYTES
    # Generous: a handful of chunks and the client's buffers, never the 9 MiB object.
    assert peak < 4 * 1024 * 1024, f"streaming held {peak} bytes"
    assert store.get("large.bin") == body


def test_missing_objects_are_file_not_found(store: TranscriptStore) -> None:
    missing = "transcripts/nope/transcript.txt"
    assert not store.exists(missing)
    with pytest.raises(FileNotFoundError):
        store.get(missing)
    with pytest.raises(FileNotFoundError):
        store.stream(missing)  # before the first chunk is asked for


def test_a_write_to_a_missing_bucket_is_a_storage_error(
    bucket_settings: Callable[[str], Settings],
) -> None:
    # Not FileNotFoundError: the job would fail as an internal error instead of retrying.
    store = TranscriptStore(bucket_settings(f"gone-{uuid.uuid4().hex[:10]}"), attempts=1)
    with pytest.raises(StorageError, match="bucket does not exist"):
        store.put("transcripts/j/transcript.txt", b"x", "text/plain")


def test_ensure_bucket_twice_is_harmless(store: TranscriptStore) -> None:
    store.put("a", b"x", "text/plain")
    store.ensure_bucket()
    assert store.get("a") == b"x"


def test_delete_job_objects_removes_every_format_the_checkpoint_and_recorded_names(
    store: TranscriptStore,
) -> None:
    job, other = "job-7", "job-8"
    for fmt, content_type in TRANSCRIPT_FORMATS.items():
        store.put(transcript_object_name(job, fmt), f"{fmt} body", content_type)
    store.put(checkpoint_object_name(job), b"{}", "application/json")
    store.put(f"legacy/{job}.txt", b"old", "text/plain")
    store.put(transcript_object_name(other, "txt"), b"keep me", "text/plain")

    deleted = store.delete_job_objects(job, recorded=[f"legacy/{job}.txt"])

    assert f"legacy/{job}.txt" in deleted and checkpoint_object_name(job) in deleted
    assert not any(store.exists(name) for name in deleted)
    assert store.get(transcript_object_name(other, "txt")) == b"keep me"
    assert store.delete_job_objects(job) == deleted[:-1]  # again: nothing left, no error


@pytest.fixture(params=BACKENDS)
def private_server(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, Any], Started]]:
    """A server of this test's own, so the test may stop it: (settings overrides, process)."""
    port = free_port()
    if request.param == "s3":
        started = start_moto_s3(port, tmp_path / "moto.log")
        overrides: dict[str, Any] = s3_overrides(f"http://127.0.0.1:{port}")
    else:
        started = start_fake_gcs(port, tmp_path / "data", tmp_path / "fake-gcs.log")
        # Google's variable, not ours: the client built below reads it.
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        overrides = {"storage_backend": "gcs"}
    try:
        yield overrides, started
    finally:
        stop_group(started.pid)


def test_a_server_gone_mid_way_is_retried_then_a_storage_error(
    private_server: tuple[dict[str, Any], Started],
) -> None:
    overrides, started = private_server
    store = TranscriptStore(
        load_settings(env="test", bucket="gone-bucket", **overrides), attempts=3
    )
    store.ensure_bucket()
    store.put("x", b"y", "text/plain")
    assert store.get("x") == b"y"

    stop_group(started.pid)
    began = time.monotonic()
    with pytest.raises(StorageError, match="failed after 3 tries"):
        store.get("x")
    with pytest.raises(StorageError, match="failed after 3 tries"):
        store.put("x", b"z", "text/plain")
    # Generous cap: two operations of three quick refusals and sub-second backoffs each.
    assert time.monotonic() - began < 60


def test_a_stream_has_its_first_chunk_before_it_is_returned(
    private_server: tuple[dict[str, Any], Started],
) -> None:
    # Read inside the retried open: a fault before the first byte is the caller's to answer
    # (a problem), never raised while a WSGI server iterates the body (a bare 500).
    overrides, started = private_server
    store = TranscriptStore(load_settings(env="test", bucket="first-bucket", **overrides))
    store.ensure_bucket()
    store.put("small.txt", b"hello", "text/plain")
    chunks = store.stream("small.txt")
    stop_group(started.pid)
    assert next(chunks) == b"hello"


def test_a_server_gone_in_the_middle_of_a_stream_is_a_storage_error(
    private_server: tuple[dict[str, Any], Started],
) -> None:
    overrides, started = private_server
    store = TranscriptStore(load_settings(env="test", bucket="cut-bucket", **overrides))
    store.ensure_bucket()
    # Far more than loopback's socket buffers hold (Linux: 32 MiB + 4 MiB at most by default):
    # most of it is still to come when the server dies.
    store.put("long.bin", bytes(64 * 1024 * 1024), "application/octet-stream")
    chunks = store.stream("long.bin")
    assert next(chunks)
    stop_group(started.pid)
    with pytest.raises(StorageError, match=r"read long\.bin"):
        for _ in chunks:
            pass
