"""The web app in real headless Chromium against the real local profile.

`python -m local_emulators up --with-fixtures` on ports and a state directory of its own, then
Debian's Chromium through Playwright (``executable_path``; Playwright's own browser download
is never used): sign in with the printed key (by keyboard), submit the demo episode, watch its
progress bar reach 100, read the transcript, seek by clicking a word, search a phrase spoken
in it and open the hit at its moment, download the SRT, delete the job. Every console error,
uncaught exception, ``securitypolicyviolation`` event and CSP report sent during the run fails
the test, and axe-core (vendored, evaluated through the DevTools protocol so the page's CSP is
not loosened) finds no serious or critical WCAG A/AA violation. Screenshots of the library and
the reader at desktop and phone widths go to ``artifacts/screenshots/``; with
``PODSCRIBE_UPDATE_SCREENSHOTS=1`` they are copied to ``docs/screenshots/`` too (the README's).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import srt

from local_emulators.fixtures import EPISODE
from tests.services import REDIS_URL, free_port, throwaway_database

ROOT = Path(__file__).resolve().parents[2]
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
ARTIFACTS = ROOT / "artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
SEARCHED = "country"
TRANSCRIBE_TIMEOUT_MS = 240_000
SEEK_TOLERANCE = 0.35

# Runs before any page script (through the DevTools protocol, so the CSP does not apply to it).
_COLLECT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.reportCspViolation(`${event.violatedDirective} blocked ${event.blockedURI} (${where})`);
});
"""


@dataclass
class Observed:
    """What the page said that a clean run must not: errors, violations, reports."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    csp_reports: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Profile:
    submit_url: str
    api_key: str


def _profile_environment(state_dir: Path, database_url: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PODSCRIBE_", "WHISPER_", "PUBSUB_", "STORAGE_EMULATOR"))
    }
    environment |= {
        "PODSCRIBE_LOCAL_STATE_DIR": str(state_dir),
        "PODSCRIBE_DATABASE_URL": database_url,
        "PODSCRIBE_REDIS_URL": REDIS_URL,
        "PODSCRIBE_LOCAL_SWEEP_INTERVAL_SECONDS": "5",
        "PODSCRIBE_PROJECT_ID": "podscribe-web-test",
    }
    for name in ("SUBMIT", "DISPATCH", "SWEEP", "PUBSUB", "GCS", "FIXTURES", "POSTGRES", "REDIS"):
        environment[f"PODSCRIBE_LOCAL_{name}_PORT"] = str(free_port())
    return environment


def _profile_command(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local_emulators", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Profile]:
    state_dir = tmp_path_factory.mktemp("web") / "state"
    with throwaway_database() as database_url:
        environment = _profile_environment(state_dir, database_url)
        try:
            started = _profile_command(environment, "up", "--with-fixtures")
            assert started.returncode == 0, started.stdout + started.stderr
            api_key = next(
                line.split()[-1]
                for line in started.stdout.splitlines()
                if line.startswith("API key:")
            )
            yield Profile(f"http://127.0.0.1:{environment['PODSCRIBE_LOCAL_SUBMIT_PORT']}", api_key)
        finally:
            _profile_command(environment, "down")


def _watch(page: Any, observed: Observed) -> None:
    # A binding, not page state: it survives reloads and navigations.
    page.expose_function(
        "reportCspViolation", lambda text: observed.csp_violations.append(str(text))
    )
    page.add_init_script(_COLLECT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            observed.console_errors.append(f"{message.text} at {message.location}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: observed.page_errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            observed.csp_reports.append(request.post_data or request.url)
            if "/v1/csp-reports" in request.url
            else None
        ),
    )


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(200)  # the layout settles (the progress bar's transition)
        path = ARTIFACTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=False)
        if os.environ.get("PODSCRIBE_UPDATE_SCREENSHOTS") == "1":
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
    page.set_viewport_size(DESKTOP)


def _serious_accessibility_violations(page: Any) -> list[str]:
    """axe-core's serious and critical WCAG 2.x A/AA findings on the page as it is."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];
          const found = await axe.run(document, { runOnly: { type: "tag", values: tags } });
          return found.violations.map((v) => ({
            id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")),
          }));
        }"""
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['nodes']}"
        for violation in result
        if violation["impact"] in ("serious", "critical")
    ]


def _current_time(page: Any) -> float:
    return float(page.evaluate("document.querySelector('audio').currentTime"))


def _wait_for_seek(page: Any, seconds: float) -> None:
    page.wait_for_function(
        "([t, tolerance]) => Math.abs(document.querySelector('audio').currentTime - t) < tolerance",
        arg=[seconds, SEEK_TOLERANCE],
        timeout=15_000,
    )


@pytest.mark.slow
def test_sign_in_transcribe_read_seek_search_download_delete(
    chromium: Any, profile: Profile, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    observed = Observed()
    context = chromium.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    _watch(page, observed)
    page.goto(profile.submit_url)

    # Keyboard: the key field has focus; Tab reaches "Sign in" and Enter submits.
    key_field = page.get_by_label("API key", exact=True)
    expect(key_field).to_be_focused()
    key_field.fill(profile.api_key)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # The key is in sessionStorage, for this tab only, and in no URL.
    assert page.evaluate("sessionStorage.getItem('podscribe.apiKey')") == profile.api_key
    assert page.evaluate("localStorage.length") == 0
    assert profile.api_key not in page.url

    library = page.get_by_role("region", name="Your transcripts", exact=True)
    page.get_by_label("Episode link", exact=True).fill(EPISODE.apple_url)
    page.get_by_role("button", name="Transcribe", exact=True).click()
    # At once at the top of the library, with a live progress bar.
    job = library.get_by_role("listitem").first
    expect(job).to_be_visible(timeout=5_000)
    bar = job.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuemin", "0")
    expect(bar).to_have_attribute("aria-valuemax", "100")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=TRANSCRIBE_TIMEOUT_MS)
    expect(job).to_contain_text("Done")
    job_id = job.get_attribute("data-job-id")
    assert job_id and re.fullmatch(r"[0-9a-f-]{36}", job_id)
    expect(job.get_by_role("link", name=EPISODE.title)).to_be_visible()
    assert _serious_accessibility_violations(page) == []

    # The reader: title, show, audio on the episode's own URL, the transcript with timestamps.
    job.get_by_role("link", name=EPISODE.title).click()
    expect(page).to_have_url(re.compile(rf"#/t/{job_id}$"))
    reader = page.locator("#reader")
    expect(reader.get_by_role("heading", name=EPISODE.title)).to_be_visible()
    expect(reader).to_contain_text(EPISODE.show)
    audio = page.locator("audio")
    assert (audio.get_attribute("src") or "").endswith(".mp3")
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1", timeout=15_000)
    segments = page.locator("#reader-transcript > li")
    expect(segments.first).to_be_visible()
    assert "country" in (page.locator("#reader-transcript").text_content() or "").lower()

    # Seek by clicking a word (a late one, so the move is not from 0 to about 0).
    word = page.locator("#reader-transcript .word", has_text=SEARCHED).first
    word_start = float(word.get_attribute("data-start") or "nan")
    assert word_start > 1.0
    word.click()
    _wait_for_seek(page, word_start)
    expect(word).to_have_class(re.compile(r"\bcurrent\b"))
    expect(page.locator('#reader-transcript > li[aria-current="true"]')).to_have_count(1)
    # And by a segment's timestamp button, from the keyboard.
    first_stamp = segments.first.get_by_role("button")
    first_stamp.focus()
    page.keyboard.press("Enter")
    _wait_for_seek(page, float(segments.first.get_attribute("data-start") or "nan"))
    _screenshot(page, "reader")
    assert _serious_accessibility_violations(page) == []

    # The SRT download (fetched with the key, saved through a Blob URL).
    with page.expect_download() as download_info:
        reader.get_by_role("link", name="SRT", exact=True).click()
    saved = tmp_path / "episode.srt"
    download_info.value.save_as(saved)
    captions = list(srt.parse(saved.read_text(encoding="utf-8")))
    assert captions and SEARCHED in " ".join(c.content for c in captions).lower()
    for name in ("TXT", "WebVTT", "JSON"):
        expect(reader.get_by_role("link", name=name, exact=True)).to_be_visible()

    # A link to this moment names the job and the time.
    word.click()
    _wait_for_seek(page, word_start)
    page.get_by_role("button", name="Copy link to this moment").click()
    moment = page.get_by_label("Link to this moment")
    expect(moment).to_have_value(re.compile(rf"#/t/{job_id}\?t=\d+\.\d$"))
    moment_url = moment.input_value()
    # Opened afresh (from the library), the link puts the reader at that moment.
    page.get_by_role("link", name="Back to your transcripts").click()
    expect(library).to_be_visible()
    page.goto(moment_url)
    expect(reader.get_by_role("heading", name=EPISODE.title)).to_be_visible()
    _wait_for_seek(page, float(moment_url.rpartition("=")[2]))
    assert abs(float(moment_url.rpartition("=")[2]) - word_start) < SEEK_TOLERANCE

    # Search a phrase spoken in the episode; the hit opens the reader at its moment.
    page.get_by_role("link", name="Back to your transcripts").click()
    page.get_by_label("Search transcripts", exact=True).fill(SEARCHED)
    page.get_by_role("button", name="Search", exact=True).click()
    hit = page.locator("#search-results > li").first
    expect(hit).to_be_visible(timeout=10_000)
    expect(hit.locator("mark").first).to_have_text(re.compile(SEARCHED, re.IGNORECASE))
    _screenshot(page, "library")  # the search's hits above the library
    assert _serious_accessibility_violations(page) == []
    hit_link = hit.get_by_role("link", name=EPISODE.title)
    href = hit_link.get_attribute("href") or ""
    found = re.fullmatch(rf"#/t/{job_id}\?t=(\d+(?:\.\d+)?)", href)
    assert found, href
    hit_link.click()
    expect(reader.get_by_role("heading", name=EPISODE.title)).to_be_visible()
    # (The demo's speech is one segment: its hit is at that segment's start.)
    _wait_for_seek(page, float(found.group(1)))

    # Delete: it leaves the library.
    page.get_by_role("link", name="Back to your transcripts").click()
    page.once("dialog", lambda dialog: dialog.accept())
    library.get_by_role("button", name=f"Delete {EPISODE.title}").click()
    expect(library.locator(f'li[data-job-id="{job_id}"]')).to_have_count(0)
    page.reload()
    page.get_by_label("API key", exact=True).wait_for(state="hidden")
    expect(library.get_by_text("No transcripts yet")).to_be_visible()

    # Sign out forgets the key.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('podscribe.apiKey')") is None

    context.close()
    assert observed.console_errors == []
    assert observed.page_errors == []
    assert observed.csp_violations == []
    assert observed.csp_reports == []
