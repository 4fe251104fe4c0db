"""Per-key webhook secrets (derived from the master) and Standard Webhooks signatures, checked
against the ``standardwebhooks`` package's own signer and verifier."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from podscribe.api.auth import key_fingerprint
from podscribe.jobs.webhooks import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    secret_for_key,
    sign,
    signed_headers,
    verify,
)

MASTER = "a-master-secret"
KEY_A = key_fingerprint("key-a")
KEY_B = key_fingerprint("key-b")
BODY = b'{"type":"transcription.succeeded","id":"x"}'
DELIVERY = "6f1c0f6e-8d0b-4c5e-9b55-1c2d3e4f5a6b"


def test_a_key_secret_is_stable_and_in_the_standard_form() -> None:
    secret = secret_for_key(MASTER, KEY_A)
    assert secret == secret_for_key(MASTER, KEY_A)
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32


def test_a_key_secret_differs_per_key_and_per_master() -> None:
    secrets = {
        secret_for_key(MASTER, KEY_A),
        secret_for_key(MASTER, KEY_B),
        secret_for_key("rotated-master", KEY_A),
        secret_for_key("rotated-master", KEY_B),
    }
    assert len(secrets) == 4


def test_our_signature_is_the_standard_one() -> None:
    secret = secret_for_key(MASTER, KEY_A)
    timestamp = int(time.time())
    theirs = Webhook(secret).sign(
        DELIVERY, datetime.fromtimestamp(timestamp, tz=UTC), BODY.decode()
    )
    assert sign(DELIVERY, timestamp, BODY, secret) == theirs


def test_signed_headers_verify_with_the_keys_secret_only() -> None:
    secret = secret_for_key(MASTER, KEY_A)
    headers = signed_headers(DELIVERY, BODY, secret, int(time.time()))
    assert headers[ID_HEADER] == DELIVERY
    assert Webhook(secret).verify(BODY, headers)["id"] == "x"
    assert verify(BODY, headers, secret)
    other = secret_for_key(MASTER, KEY_B)
    assert not verify(BODY, headers, other)
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, headers)


@pytest.mark.parametrize(
    "change",
    [
        {ID_HEADER: "another-delivery"},  # the id is signed: no replay under another id
        {TIMESTAMP_HEADER: str(int(time.time()) - 1)},  # the timestamp is signed
        {TIMESTAMP_HEADER: str(int(time.time()) - 3600)},  # and must be recent
        {SIGNATURE_HEADER: "v1,AAAA"},
        {TIMESTAMP_HEADER: "soon"},
    ],
)
def test_a_changed_header_fails_verification(change: dict[str, str]) -> None:
    secret = secret_for_key(MASTER, KEY_A)
    headers = signed_headers(DELIVERY, BODY, secret, int(time.time())) | change
    assert not verify(BODY, headers, secret)


def test_any_of_several_signatures_may_match() -> None:
    # Standard Webhooks senders may list several (a secret being rotated): any one verifies.
    secret = secret_for_key(MASTER, KEY_A)
    headers = signed_headers(DELIVERY, BODY, secret, int(time.time()))
    headers[SIGNATURE_HEADER] = f"v1,AAAA {headers[SIGNATURE_HEADER]}"
    assert verify(BODY, {name.upper(): value for name, value in headers.items()}, secret)


def test_without_a_secret_the_headers_carry_no_signature() -> None:
    headers = signed_headers(DELIVERY, BODY, None, 1_700_000_000)
    assert SIGNATURE_HEADER not in headers
    assert headers[TIMESTAMP_HEADER] == "1700000000"
