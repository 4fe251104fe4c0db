"""What the submit API tells callers about its insides: nothing.

Through functions-framework's test client against real services, like ``test_submit_api``:
outages answer with the code's generic message, readiness probes the database at most once a
second whatever the request rate, and links follow ``PODSCRIBE_PUBLIC_BASE_URL`` or, without
it, forwarded headers only from trusted proxy hops.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from podscribe.errors import DatabaseUnavailableError
from tests.integration.test_submit_api import (
    AUTH,
    assert_problem,
    make_client,
    submit,
)

# Each test's function environment (real database, Pub/Sub emulator, fake GCS, Redis).
pytestmark = pytest.mark.usefixtures("environment")


class _CountingListener:
    """A TCP port on 127.0.0.1 that accepts and drops every connection, counting them."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dead_database() -> Iterator[_CountingListener]:
    listener = _CountingListener()
    yield listener
    listener.close()


def _detail_names_nothing(body: dict[str, Any], port: int) -> None:
    assert body["detail"] == DatabaseUnavailableError.public_message
    for leak in (str(port), "127.0.0.1", "postgres", "nowhere"):
        assert leak not in body["detail"]


def test_readiness_says_only_unavailable_and_probes_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
    dead_database: _CountingListener,
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{dead_database.port}/nowhere"
    client = make_client(monkeypatch, PODSCRIBE_DATABASE_URL=down)
    answers = [client.get("/readyz") for _ in range(15)]
    answers += [client.get("/healthz?ready=1") for _ in range(15)]
    for answer in answers:
        body = assert_problem(answer, 503, "database_unavailable")
        _detail_names_nothing(body, dead_database.port)
        assert answer.headers["Retry-After"]
    # Thirty unauthenticated requests cost the database one connection attempt (two if the
    # one-second window turned over meanwhile), not thirty.
    assert 1 <= dead_database.accepted <= 2


def test_an_authenticated_outage_names_no_host_or_port(
    monkeypatch: pytest.MonkeyPatch,
    dead_database: _CountingListener,
) -> None:
    down = f"postgresql://postgres@127.0.0.1:{dead_database.port}/nowhere"
    client = make_client(monkeypatch, PODSCRIBE_DATABASE_URL=down)
    body = assert_problem(submit(client), 503, "database_unavailable")
    _detail_names_nothing(body, dead_database.port)
    status = client.get("/v1/transcriptions/6f1d0f0e-5b1e-4a8e-9a57-0d2b4a8f3c11", headers=AUTH)
    _detail_names_nothing(assert_problem(status, 503, "database_unavailable"), 0)


_SPOOFED = {
    "Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
}


def _links(client: Any, headers: dict[str, str]) -> tuple[str, str]:
    created = client.post(
        "/v1/transcriptions",
        json={"url": "https://podcasts.apple.com/us/podcast/x/id1535809341?i=1000651234567"},
        headers={**AUTH, **headers},
    )
    assert created.status_code in (200, 202), created.get_data(as_text=True)
    servers = client.get("/v1/openapi.json", headers=headers).get_json()["servers"]
    return created.get_json()["links"]["self"], servers[0]["url"]


def test_a_configured_public_base_url_beats_every_header(monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client(
        monkeypatch,
        PODSCRIBE_PUBLIC_BASE_URL="https://api.podscribe.example/",
        PODSCRIBE_TRUSTED_PROXY_HOPS="1",
    )
    link, server = _links(client, _SPOOFED)
    assert link.startswith("https://api.podscribe.example/v1/transcriptions/")
    assert server == "https://api.podscribe.example"


def test_without_trusted_hops_forwarded_headers_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(monkeypatch, PODSCRIBE_TRUSTED_PROXY_HOPS="0")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    link, server = _links(client, headers)
    assert link.startswith("http://localhost/v1/transcriptions/")
    assert server == "http://localhost"
    # A Host header that is not a host name is not echoed into links either.
    link, server = _links(client, {"Host": "evil.example/phish?x="})
    assert "evil" not in link and "evil" not in server


def test_behind_one_trusted_hop_its_forwarded_entry_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(monkeypatch, PODSCRIBE_TRUSTED_PROXY_HOPS="1")
    # The client's own claims come first; the trusted proxy appended the last entry.
    headers = {
        "X-Forwarded-Proto": "http, https",
        "X-Forwarded-Host": "evil.example, api.podscribe.example",
    }
    link, server = _links(client, headers)
    assert link.startswith("https://api.podscribe.example/v1/transcriptions/")
    assert server == "https://api.podscribe.example"
