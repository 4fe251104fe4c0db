"""Fixtures of the tests that run the real submit function (see ``submit_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_PROJECT
from tests.integration.submit_support import api_environment, create_topic_and_subscription
from tests.services import missing_service


@pytest.fixture
def subscription(pubsub_emulator: str) -> tuple[str, str]:
    """A fresh jobs topic and a pull subscription on it: (topic id, subscription path)."""
    return create_topic_and_subscription(TEST_PROJECT)


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    pubsub_emulator: str,
    gcs_emulator: str,
    subscription: tuple[str, str],
) -> Iterator[dict[str, str]]:
    """The submit function's environment on that topic; a test may change it before its
    first request."""
    with api_environment(
        monkeypatch,
        database_url=database_url,
        pubsub_host=pubsub_emulator,
        storage_url=gcs_emulator,
        topic=subscription[0],
    ) as applied:
        yield applied


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium under Playwright (its own browser download is never used)."""
    if not CHROMIUM.exists():
        missing_service(f"Debian's chromium at {CHROMIUM} (scripts/ensure-system.sh installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("playwright for Python (the dev extra)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # No user namespaces in containers; the test's pages are its own.
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield browser
        browser.close()
