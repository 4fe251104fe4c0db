"""Reads and creates on separate budgets, and IPv6 clients limited per /64, through Redis.

The submit function runs under functions-framework's test client against the shared Redis
(with a key prefix of each test's own), as in ``test_submit_api.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.submit_support import API_KEY
from tests.integration.test_submit_api import (
    assert_problem,
    make_client,
    submit,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def test_polling_reads_do_not_spend_the_create_budget(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(
        monkeypatch,
        PODSCRIBE_RATE_LIMIT_PER_KEY="5",
        PODSCRIBE_RATE_LIMIT_PER_IP="10",
        PODSCRIBE_RATE_LIMIT_READS_PER_KEY="120",
        PODSCRIBE_RATE_LIMIT_READS_PER_IP="240",
    )
    job_id = submit(client).get_json()["id"]
    reads: list[Any] = []
    creates: list[int] = [202]
    # A CLI polling once a second for 90 s (all inside one window here) while it, or a
    # second client with the same key, submits now and then.
    for poll in range(90):
        reads.append(client.get(f"/v1/transcriptions/{job_id}", headers=AUTH))
        if poll % 10 == 9:
            creates.append(submit(client).status_code)
    assert [read.status_code for read in reads] == [200] * 90
    assert reads[-1].headers["RateLimit-Limit"] == "120"
    assert reads[-1].headers["RateLimit-Remaining"] == "30"
    # Creates stay limited to their own budget of 5, whatever the polling did.
    assert creates == [202, 200, 200, 200, 200, 429, 429, 429, 429, 429]
    limited = submit(client)
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["RateLimit-Limit"] == "5"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # And a read after the creates ran out is still admitted.
    assert client.get(f"/v1/transcriptions/{job_id}", headers=AUTH).status_code == 200


def test_ipv6_addresses_in_one_64_share_a_bucket(
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_client(
        monkeypatch, PODSCRIBE_RATE_LIMIT_PER_IP="3", PODSCRIBE_TRUSTED_PROXY_HOPS="1"
    )

    def probe(address: str) -> int:
        headers = {"X-Forwarded-For": address, "Authorization": "Bearer nope"}
        return int(client.get(f"/v1/transcriptions/{uuid.uuid4()}", headers=headers).status_code)

    # Three addresses of one /64 (a host picks any it likes) spend one budget of 3.
    same_64 = ["2001:db8:7:1::1", "2001:db8:7:1:aaaa::2", "2001:db8:7:1:ffff:ffff:ffff:fffe"]
    assert [probe(address) for address in same_64] == [401, 401, 401]
    assert probe("2001:db8:7:1:1234::99") == 429
    # The next /64 is someone else; IPv4 stays per address.
    assert probe("2001:db8:7:2::1") == 401
    assert [probe("192.0.2.10") for _ in range(4)] == [401, 401, 401, 429]
    assert probe("192.0.2.11") == 401
