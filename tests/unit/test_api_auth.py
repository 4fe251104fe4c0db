"""Bearer keys: accepted, refused, and known only by fingerprint."""

from __future__ import annotations

import pytest

from podscribe.api.auth import authenticate, bearer_token, key_fingerprint
from podscribe.errors import UnauthorizedError
from podscribe.settings import load_settings

SETTINGS = load_settings(env="test", api_keys="alpha-key-1,beta-key-2")


@pytest.mark.parametrize("key", ["alpha-key-1", "beta-key-2"])
def test_every_configured_key_is_accepted(key: str) -> None:
    caller = authenticate(f"Bearer {key}", SETTINGS)
    assert caller.fingerprint == key_fingerprint(key)
    assert key not in caller.fingerprint
    assert len(caller.fingerprint) == 64 and caller.short == caller.fingerprint[:12]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "alpha-key-1",
        "Basic alpha-key-1",
        "Bearer",
        "Bearer ",
        "Bearer alpha-key-",
        "Bearer alpha-key-11",
        "Bearer alpha-key-1 beta-key-2",
        "Bearer " + "a" * 5000,
        "Bearer ALPHA-KEY-1",
    ],
)
def test_anything_else_is_unauthorized(header: str | None) -> None:
    with pytest.raises(UnauthorizedError) as raised:
        authenticate(header, SETTINGS)
    assert "alpha-key-1" not in raised.value.message


def test_the_scheme_is_case_insensitive_and_spaces_are_trimmed() -> None:
    assert bearer_token("bearer  alpha-key-1 ") == "alpha-key-1"
    assert authenticate("BEARER alpha-key-1", SETTINGS).fingerprint == key_fingerprint(
        "alpha-key-1"
    )


def test_no_configured_keys_means_nobody_gets_in() -> None:
    with pytest.raises(UnauthorizedError):
        authenticate("Bearer anything", load_settings(env="test", api_keys=""))


def test_fingerprints_are_stable_and_distinct() -> None:
    assert key_fingerprint("k1") == key_fingerprint("k1")
    assert key_fingerprint("k1") != key_fingerprint("k2")
    # A keyed hash, not a bare SHA-256 of the key (which lookup tables could reverse).
    import hashlib

    assert key_fingerprint("k1") != hashlib.sha256(b"k1").hexdigest()
