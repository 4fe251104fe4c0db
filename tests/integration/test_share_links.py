"""Share links through the real submit app against real services, and in Chromium.

A link's URLs need no key, render with the owner's speaker names in every format (read back by
each format's parser), answer any origin (CORS, checked by a real browser loading the WebVTT
into a ``<track>`` from a page on another port), and die at once on revoke, when the owner's
access goes, or with the job. Every refusal of ``/t/`` is the same 404.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree
from sqlalchemy.engine import Engine

from local_emulators.loopback_server import FixtureServer, Reply
from podscribe.api.headers import SHARED_RESOURCE_POLICY
from podscribe.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, main
from podscribe.settings import get_settings
from tests.integration.speaker_support import bearer, speakers_shown, submit, succeeded_job
from tests.integration.submit_support import (
    API_KEY,
    OTHER_KEY,
    SUBMIT_SOURCE,
    functions_framework_process,
    submit_test_client,
)
from tests.integration.test_submit_api import assert_problem

FORMATS = {
    "vtt": ("text/vtt", "vtt"),
    "srt": ("application/x-subrip", "srt"),
    "json": ("application/json", "podcast-json"),
    "html": ("text/html", "html"),
    "txt": ("text/plain", "txt"),
}
"""A link's extensions: the content type answered and the format it is (for its parser)."""
PODCAST_NS = "https://podcastindex.org/namespace/1.0"


@pytest.fixture
def client(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    return submit_test_client(monkeypatch)


def share(client: Any, job_id: str, key: str | None = None) -> Any:
    headers = bearer(key) if key else bearer()
    return client.post(f"/v1/transcriptions/{job_id}/links", headers=headers)


def path_of(url: str) -> str:
    return url.removeprefix("http://localhost")


def test_a_link_serves_every_format_with_the_owners_names_to_anyone(
    client: Any, engine: Engine, environment: dict[str, str]
) -> None:
    job_id = succeeded_job(client, engine)
    names = {"names": {"S1": "Ann Example", "S2": "Bob & <Co>"}}
    client.patch(f"/v1/transcriptions/{job_id}/speakers", json=names, headers=bearer())
    made = share(client, job_id)
    assert made.status_code == 201, made.get_data(as_text=True)
    link = made.get_json()
    assert len(link["token"]) == 43
    assert set(link["urls"]) == set(FORMATS)
    for ext, (content_type, fmt) in FORMATS.items():
        url = link["urls"][ext]
        assert url == f"http://localhost/t/{link['token']}.{ext}"
        answer = client.get(path_of(url))  # no key
        assert answer.status_code == 200, ext
        assert answer.mimetype == content_type
        assert answer.mimetype_params["charset"] == "utf-8"
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        assert answer.headers["Cache-Control"] == "public, max-age=86400"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
        assert answer.headers["Content-Security-Policy"] == SHARED_RESOURCE_POLICY
        assert "script-src" not in answer.headers["Content-Security-Policy"]  # default 'none'
        assert speakers_shown(fmt, answer.get_data(as_text=True)) == {"Ann Example", "Bob & <Co>"}
        again = client.get(path_of(url), headers={"If-None-Match": answer.headers["ETag"]})
        assert again.status_code == 304
    podcast_json = json.loads(client.get(path_of(link["urls"]["json"])).get_data())
    assert podcast_json["version"] == "1.0.0"
    # A later rename shows through the same URLs (and changes the ETag).
    before = client.get(path_of(link["urls"]["vtt"])).headers["ETag"]
    client.patch(
        f"/v1/transcriptions/{job_id}/speakers", json={"names": {"S1": "Ann"}}, headers=bearer()
    )
    renamed = client.get(path_of(link["urls"]["vtt"]))
    assert renamed.headers["ETag"] != before
    assert speakers_shown("vtt", renamed.get_data(as_text=True)) == {"Ann", "Bob & <Co>"}
    preflight = client.options(
        path_of(link["urls"]["vtt"]),
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


def test_the_job_document_shows_the_snippet_ready_to_paste(client: Any, engine: Engine) -> None:
    job_id = succeeded_job(client, engine)
    first, second = share(client, job_id).get_json(), share(client, job_id).get_json()
    document = client.get(f"/v1/transcriptions/{job_id}", headers=bearer()).get_json()
    assert [link["id"] for link in document["share_links"]] == [first["id"], second["id"]]
    listed = client.get(f"/v1/transcriptions/{job_id}/links", headers=bearer()).get_json()
    assert [link["id"] for link in listed["items"]] == [first["id"], second["id"]]
    snippet = document["share_links"][0]["podcast_transcript"]
    assert snippet == first["podcast_transcript"]
    item = ElementTree.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{snippet}</item>')
    tags = item.findall(f"{{{PODCAST_NS}}}transcript")
    assert {tag.get("url"): tag.get("type") for tag in tags} == {
        first["urls"][ext]: content_type for ext, (content_type, _) in FORMATS.items()
    }
    assert all(tag.get("language") == "en" for tag in tags)
    assert {tag.get("url") for tag in tags if tag.get("rel") == "captions"} == {
        first["urls"]["vtt"],
        first["urls"]["srt"],
    }
    # Another key with access has links of its own only.
    assert submit(client, OTHER_KEY).status_code == 200
    theirs = client.get(f"/v1/transcriptions/{job_id}", headers=bearer(OTHER_KEY)).get_json()
    assert theirs["share_links"] == []


def test_revoking_kills_every_url_at_once_and_refusals_all_look_alike(
    client: Any, engine: Engine
) -> None:
    job_id = succeeded_job(client, engine)
    link = share(client, job_id).get_json()
    kept = share(client, job_id).get_json()
    other_job = succeeded_job(client, engine, url="https://podcasts.apple.com/us/podcast/x/id7?i=8")
    foreign = share(client, other_job).get_json()
    revoke = client.delete(f"/v1/transcriptions/{job_id}/links/{link['id']}", headers=bearer())
    assert revoke.status_code == 204
    refused = [client.get(path_of(url)) for url in link["urls"].values()]
    token = link["token"]
    refused += [
        client.get(f"/t/{secrets.token_urlsafe(32)}.vtt"),  # the form of a token, unknown
        client.get(f"/t/{token[:-1]}.vtt"),
        client.get(f"/t/{token}x.vtt"),
        client.get(f"/t/{token[:-1]}!.vtt"),
        client.get(f"/t/{kept['token']}.docx"),
        client.get(f"/t/{kept['token']}"),
        client.get("/t/..vtt"),
    ]
    bodies = set()
    for answer in refused:
        assert_problem(answer, 404, "not_found")
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
        bodies.add(answer.get_data())
    assert len(bodies) == 1  # nothing tells a revoked token from a made-up one
    assert client.get(path_of(kept["urls"]["vtt"])).status_code == 200
    assert client.get(path_of(foreign["urls"]["srt"])).status_code == 200
    links = f"/v1/transcriptions/{job_id}/links"
    for link_id in (link["id"], foreign["id"], "not-a-uuid"):
        gone = client.delete(f"{links}/{link_id}", headers=bearer())
        assert_problem(gone, 404, "share_link_not_found")
    assert_problem(
        client.delete(f"{links}/{kept['id']}", headers=bearer(OTHER_KEY)), 404, "job_not_found"
    )


def test_links_die_with_the_owners_access_and_with_the_job(client: Any, engine: Engine) -> None:
    job_id = succeeded_job(client, engine)
    assert submit(client, OTHER_KEY).status_code == 200
    mine = share(client, job_id).get_json()
    theirs = share(client, job_id, OTHER_KEY).get_json()
    # The other key gives the job up: its links go, mine stay.
    assert (
        client.delete(f"/v1/transcriptions/{job_id}", headers=bearer(OTHER_KEY)).status_code == 204
    )
    assert client.get(path_of(theirs["urls"]["txt"])).status_code == 404
    assert client.get(path_of(mine["urls"]["txt"])).status_code == 200
    # The last key deletes the job: every link of it is gone.
    assert client.delete(f"/v1/transcriptions/{job_id}", headers=bearer()).status_code == 204
    assert client.get(path_of(mine["urls"]["txt"])).status_code == 404


def test_links_need_a_succeeded_job_of_the_callers_and_are_capped(
    client: Any, engine: Engine, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capped = submit_test_client(monkeypatch, PODSCRIBE_SHARE_LINKS_PER_JOB="2")
    queued = submit(capped).get_json()["id"]
    assert_problem(share(capped, queued), 409, "transcript_not_ready")
    job_id = succeeded_job(capped, engine, url="https://podcasts.apple.com/us/podcast/x/id3?i=4")
    assert_problem(share(capped, job_id, OTHER_KEY), 404, "job_not_found")
    assert_problem(share(capped, "nope"), 404, "job_not_found")
    first = share(capped, job_id).get_json()
    assert share(capped, job_id).status_code == 201
    assert_problem(share(capped, job_id), 409, "too_many_share_links")
    client_delete = capped.delete(
        f"/v1/transcriptions/{job_id}/links/{first['id']}", headers=bearer()
    )
    assert client_delete.status_code == 204
    assert share(capped, job_id).status_code == 201


def test_share_link_reads_are_limited_per_address(
    client: Any, engine: Engine, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    limited = submit_test_client(monkeypatch, PODSCRIBE_RATE_LIMIT_SHARE_LINKS_PER_IP="3")
    job_id = succeeded_job(limited, engine)
    url = path_of(share(limited, job_id).get_json()["urls"]["vtt"])
    assert [limited.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = limited.get(url)
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # Made-up tokens spend the same budget: guessing is limited too.
    assert limited.get(f"/t/{secrets.token_urlsafe(32)}.vtt").status_code == 429


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>player</title></head><body>
<video id="player" crossorigin="anonymous" muted></video>
<script>
async function loadTrack(src) {
  const video = document.getElementById("player");
  const element = document.createElement("track");
  element.kind = "captions";
  element.src = src;
  video.appendChild(element);
  element.track.mode = "hidden";
  await new Promise((resolve, reject) => {
    element.addEventListener("load", resolve);
    element.addEventListener("error", () => reject(new Error("track failed: " + src)));
  });
  return Array.from(element.track.cues, (cue) => cue.text);
}
async function fetched(url, cache) {
  const response = await fetch(url, {cache: cache || "default"});
  return {status: response.status, body: await response.text()};
}
async function fromFetch(url) {
  const response = await fetch(url);
  return loadTrack(URL.createObjectURL(await response.blob()));
}
</script></body></html>"""


def test_a_player_on_another_origin_loads_the_link_until_it_is_revoked(
    client: Any, engine: Engine, environment: dict[str, str], chromium: Any, tmp_path: Path
) -> None:
    job_id = succeeded_job(client, engine)
    client.patch(
        f"/v1/transcriptions/{job_id}/speakers",
        json={"names": {"S1": "Ann Example"}},
        headers=bearer(),
    )
    with (
        functions_framework_process(
            SUBMIT_SOURCE, "submit", environment, tmp_path / "submit.log"
        ) as api,
        FixtureServer() as pages,
    ):
        made = share(client, job_id).get_json()
        link = {ext: url.replace("http://localhost", api.url) for ext, url in made["urls"].items()}
        pages.route("/player.html", Reply(body=_PAGE.encode(), content_type="text/html"))
        page = chromium.new_page()
        page.goto(pages.url("/player.html"))
        assert page.evaluate("location.origin") != api.url  # another port: another origin
        cues = page.evaluate("(src) => loadTrack(src)", link["vtt"])
        assert any(cue.startswith("<v Ann Example>Welcome to the show.") for cue in cues), cues
        from_fetch = page.evaluate("(url) => fromFetch(url)", link["vtt"])
        assert from_fetch == cues
        podcast = page.evaluate("(url) => fetched(url)", link["json"])
        assert podcast["status"] == 200
        assert {s.get("speaker") for s in json.loads(podcast["body"])["segments"]} == {
            "Ann Example",
            "S2",
        }
        revoke = client.delete(f"/v1/transcriptions/{job_id}/links/{made['id']}", headers=bearer())
        assert revoke.status_code == 204
        # Revoked: the origin answers 404 at once, and the browser may read it (CORS on
        # refusals too). Its own cached copy would live max-age, as a CDN's would.
        after = page.evaluate("(url) => fetched(url, 'reload')", link["vtt"])
        assert after["status"] == 404
        assert json.loads(after["body"])["code"] == "not_found"
        page.close()


def test_the_cli_names_speakers_and_shares_and_revokes(
    client: Any,
    engine: Engine,
    environment: dict[str, str],
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = succeeded_job(client, engine)
    with functions_framework_process(
        SUBMIT_SOURCE, "submit", environment, tmp_path / "submit.log"
    ) as api:
        monkeypatch.setenv("PODSCRIBE_API_URL", api.url)
        monkeypatch.setenv("PODSCRIBE_API_KEY", API_KEY)
        get_settings.cache_clear()
        try:
            assert main(["speakers", job_id, "S1=Ann Example", "S2=Bob"]) == EXIT_OK
            assert capsys.readouterr().out == "S1\tAnn Example\nS2\tBob\n"
            assert main(["speakers", job_id, "S2="]) == EXIT_OK
            assert capsys.readouterr().out == "S1\tAnn Example\nS2\t\n"
            assert main(["speakers", job_id, "S9=Nobody"]) == EXIT_REFUSED
            assert "unknown_speaker" in capsys.readouterr().err
            assert main(["speakers", job_id, "Ann"]) == EXIT_USAGE
            assert main(["share", job_id]) == EXIT_OK
            made = capsys.readouterr()
            item = ElementTree.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{made.out}</item>')
            urls = {tag.get("type"): str(tag.get("url")) for tag in item}
            vtt = httpx.get(urls["text/vtt"])
            assert vtt.status_code == 200 and "<v Ann Example>" in vtt.text
            assert main(["share", job_id, "--list"]) == EXIT_OK
            link_id = capsys.readouterr().err.split("link ")[1].split()[0]
            assert main(["share", job_id, "--revoke", link_id]) == EXIT_OK
            assert httpx.get(urls["text/vtt"]).status_code == 404
        finally:
            get_settings.cache_clear()


def test_the_reader_shows_the_names_and_shares_the_transcript(
    client: Any, engine: Engine, environment: dict[str, str], chromium: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    job_id = succeeded_job(client, engine)
    client.patch(
        f"/v1/transcriptions/{job_id}/speakers",
        json={"names": {"S1": "Ann Example"}},
        headers=bearer(),
    )
    with functions_framework_process(
        SUBMIT_SOURCE, "submit", environment, tmp_path / "submit.log"
    ) as api:
        page = chromium.new_page()
        page.goto(api.url)
        page.get_by_label("API key", exact=True).fill(API_KEY)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        page.goto(f"{api.url}/#/t/{job_id}")
        names = page.locator("#reader-transcript cite.speaker")
        expect(names).to_have_count(4)
        # A name opens each turn; the unnamed voice shows its label.
        assert names.all_text_contents() == ["Ann Example", "S2", "Ann Example", "S2"]
        page.get_by_role("button", name="Share transcript", exact=True).click()
        lines = page.get_by_label("Feed lines of the share link", exact=True)
        expect(lines).to_be_visible()
        snippet = lines.input_value()
        item = ElementTree.fromstring(f'<item xmlns:podcast="{PODCAST_NS}">{snippet}</item>')
        vtt = next(tag.get("url") for tag in item if tag.get("type") == "text/vtt")
        assert httpx.get(str(vtt)).text.count("<v Ann Example>") == 2
        page.close()
