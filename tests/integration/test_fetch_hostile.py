"""Hostile servers cannot take a fetching worker's memory or time.

Compression bombs are served by fixture servers on 127.0.0.1 and fetched in a child process
(:mod:`tests.integration.fetch_child`), whose peak RSS and elapsed time are asserted: a gzip
of a gzip that would expand to gigabytes, and single gzip and deflate bodies of compressed
zeros (5 MB on the wire, about 5 GB decoded), against every kind of caller: documents
(the Apple lookup, the episode page, the feed), the audio download, a webhook's reply.
Slow and oversized response heads come from a raw-socket server, fetched in-process.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.egress.fetcher import SafeFetcher
from podscribe.egress.transport import MAX_HEAD_BYTES
from podscribe.errors import FetchTimeoutError, TooLargeError
from podscribe.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
MIB = 2**20
RSS_LIMIT_MB = 300
# The fetch may hold the decoded body up to the document cap (10 MiB) and a few pieces.
GROWTH_LIMIT_MB = 48
# What a caller sends: the Apple lookup, an episode page, a feed (podscribe.podcasts.resolution).
DOCUMENT_ACCEPTS = {
    "lookup": "application/json",
    "page": "text/html",
    "feed": "application/rss+xml, application/xml;q=0.9, */*;q=0.1",
}


def _zeros_deflate(mebibytes: int) -> bytes:
    """Raw deflate of ``mebibytes`` MiB of zeros, built without compressing them all.

    After a full flush the compressor's history is reset, so every 1 MiB segment compresses
    to the same bytes: repeat one segment, then close the stream with an empty final block.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    segment = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    return segment * mebibytes + final


def gzip_bomb(mebibytes: int) -> bytes:
    # The trailer's CRC is not that of the content: nobody decoding within a cap gets there.
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + _zeros_deflate(mebibytes) + (0).to_bytes(4, "little") * 2


def deflate_bomb(mebibytes: int) -> bytes:
    return b"\x78\xda" + _zeros_deflate(mebibytes) + (1).to_bytes(4, "big")


# 3.5 GiB of zeros, gzipped twice: a few KB on the wire.
GZIP_OF_GZIP = gzip.compress(gzip_bomb(3584), compresslevel=9)
# Five MB on the wire, 4.7 GiB decoded.
GZIP_ZEROS = gzip_bomb(4800)
DEFLATE_ZEROS = deflate_bomb(4800)


def run_child(spec: dict[str, Any], *, timeout: float = 60) -> dict[str, Any]:
    """The child's report: ``code``, ``elapsed``, ``baseline_mb``, ``peak_mb``."""
    spec = {"rss_limit_mb": RSS_LIMIT_MB, **spec}
    finished = subprocess.run(
        [sys.executable, "-m", "tests.integration.fetch_child", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    assert lines, f"child said nothing (exit {finished.returncode}): {finished.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def assert_bounded(report: dict[str, Any], code: str) -> None:
    assert report["code"] == code, report
    assert report["peak_mb"] < RSS_LIMIT_MB, report
    assert report["peak_mb"] - report["baseline_mb"] < GROWTH_LIMIT_MB, report
    assert report["elapsed"] < 10, report


@pytest.fixture(scope="module")
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        for name, body, coding in (
            ("gzip-gzip", GZIP_OF_GZIP, "gzip, gzip"),
            ("gzip", GZIP_ZEROS, "gzip"),
            ("deflate", DEFLATE_ZEROS, "deflate"),
        ):
            reply = Reply(body=body, content_type=None, headers={"Content-Encoding": coding})
            running.route(f"/{name}", reply)
        yield running


def spec_for(server: FixtureServer, call: str, path: str, **more: Any) -> dict[str, Any]:
    return {
        "call": call,
        "url": server.url(path),
        "settings": {"ssrf_allow": [server.host_port], "idle_timeout_seconds": 5},
        "timeout": 5,
        **more,
    }


def test_the_bombs_are_what_they_claim():
    assert len(GZIP_OF_GZIP) < 64 * 1024
    assert 4.5 * 10**6 < len(GZIP_ZEROS) < 5.5 * 10**6
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflater.decompress(GZIP_ZEROS[:65536], 10 * MIB) == bytes(10 * MIB)


@pytest.mark.parametrize("caller", sorted(DOCUMENT_ACCEPTS))
def test_a_gzip_of_a_gzip_is_refused_before_it_expands(server, caller):
    spec = spec_for(server, "document", "/gzip-gzip", accept=DOCUMENT_ACCEPTS[caller])
    assert_bounded(run_child(spec), "unsafe_document")


@pytest.mark.parametrize("caller", sorted(DOCUMENT_ACCEPTS))
@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_a_compressed_document_stops_at_the_cap_as_it_is_decoded(server, caller, coding):
    spec = spec_for(server, "document", f"/{coding}", accept=DOCUMENT_ACCEPTS[caller])
    assert_bounded(run_child(spec), "too_large")


@pytest.mark.parametrize("path", ["/gzip-gzip", "/gzip", "/deflate"])
@pytest.mark.parametrize("call", ["audio", "post"])
def test_audio_and_webhook_replies_take_no_content_coding(server, call, path):
    assert_bounded(run_child(spec_for(server, call, path)), "unsafe_document")


def test_an_honest_compressed_feed_is_decoded_and_uncoded_audio_is_asked_for(tmp_path):
    feed = b"<rss><channel>" + b"<item><title>t</title></item>" * 2000 + b"</channel></rss>"
    mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x21" + bytes(4096)
    with FixtureServer() as server:
        server.route("/feed", Reply(body=gzip.compress(feed), headers={"Content-Encoding": "gzip"}))
        server.route(
            "/x-gzip", Reply(body=gzip.compress(feed), headers={"Content-Encoding": "x-gzip"})
        )
        server.route(
            "/deflate", Reply(body=zlib.compress(feed), headers={"Content-Encoding": "deflate"})
        )
        server.route("/audio", Reply(body=mp3, content_type="audio/mpeg"))
        with SafeFetcher(load_settings(env="local", ssrf_allow=[server.host_port])) as fetcher:
            for path in ("/feed", "/x-gzip", "/deflate"):
                assert fetcher.get_document(server.url(path)).content == feed
            fetcher.download_audio(server.url("/audio"), tmp_path / "episode.mp3")
    assert server.requests[0].headers["Accept-Encoding"] == "gzip, deflate"
    assert server.requests[-1].headers["Accept-Encoding"] == "identity"


class RawServer:
    """A loopback socket server that answers each connection with ``respond(connection)``."""

    def __init__(self, respond: Any) -> None:
        self._respond = respond
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host_port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                received = connection.recv(65536)
                if not received:
                    return
                request += received
            try:
                self._respond(connection, self._stop)
            except OSError:
                return  # the client hung up: what a deadline does

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


def trickle_head(connection: socket.socket, stop: threading.Event) -> None:
    """A status line, then one header byte every 0.5 s: never idle, never done."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(24):  # 12 s at most, so a fetcher without a deadline fails, not hangs
        if stop.wait(0.5):
            return
        connection.sendall(b"a")


def huge_head(connection: socket.socket, _stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    for index in range(1024):  # 1 MiB of headers
        connection.sendall(f"X-Pad-{index:04}: {'a' * 1012}\r\n".encode())
    connection.sendall(b"Content-Length: 2\r\n\r\nok")


def settings_for(server: RawServer, **overrides: Any) -> Settings:
    return load_settings(env="local", ssrf_allow=[server.host_port], **overrides)


def test_a_trickled_head_meets_the_document_deadline():
    with RawServer(trickle_head) as server:
        settings = settings_for(server, idle_timeout_seconds=1, document_timeout_seconds=2)
        started = time.monotonic()
        with SafeFetcher(settings) as fetcher, pytest.raises(FetchTimeoutError) as timeout:
            fetcher.get_document(server.url("/feed"))
        elapsed = time.monotonic() - started
    assert "total time ran out" in timeout.value.message
    assert timeout.value.code == "fetch_timeout"
    assert 1.9 < elapsed < 3.0


def test_a_trickled_head_meets_the_webhook_deadline():
    with RawServer(trickle_head) as server:
        started = time.monotonic()
        with SafeFetcher(settings_for(server)) as fetcher, pytest.raises(FetchTimeoutError):
            fetcher.post_json(server.url("/hook"), b"{}", timeout=2)
        elapsed = time.monotonic() - started
    assert 1.9 < elapsed < 3.0


@pytest.mark.parametrize("call", ["document", "post"])
def test_an_oversized_head_is_too_large(call):
    with RawServer(huge_head) as server, SafeFetcher(settings_for(server)) as fetcher:
        fetch: Callable[[], object] = {
            "document": lambda: fetcher.get_document(server.url("/feed")),
            "post": lambda: fetcher.post_json(server.url("/hook"), b"{}", timeout=5),
        }[call]
        too_large = f"headers larger than {MAX_HEAD_BYTES}"
        with pytest.raises(TooLargeError, match=too_large) as big:
            fetch()
    assert big.value.code == "too_large"
    assert not big.value.transient


def test_a_large_but_reasonable_head_is_read():
    def forty_kib_head(connection: socket.socket, _stop: threading.Event) -> None:
        pad = "".join(f"X-Pad-{index:02}: {'a' * 1012}\r\n" for index in range(40))
        connection.sendall(f"HTTP/1.1 200 OK\r\n{pad}Content-Length: 2\r\n\r\nok".encode())

    with RawServer(forty_kib_head) as server, SafeFetcher(settings_for(server)) as fetcher:
        assert fetcher.get_document(server.url("/feed")).content == b"ok"
