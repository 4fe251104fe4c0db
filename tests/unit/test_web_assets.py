"""The web app's files: what the page references exists and is served with its type and
cache policy, nothing else is reachable, and the sources keep to what the CSP allows (no
inline script or style, no HTML parsed from strings)."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from podscribe.api import web
from podscribe.api.app import SubmitApi
from podscribe.settings import load_settings

SUBMIT_SOURCE = Path(__file__).resolve().parents[2] / "functions" / "submit" / "main.py"
WEB = Path(resources.files("podscribe").joinpath("web"))  # type: ignore[arg-type]
SCRIPTS = sorted(WEB.glob("*.js"))
CONTRACT_8 = {
    "labels": ("API key", "Episode link", "Search transcripts"),
    "buttons": ("Sign in", "Transcribe", "Search"),
}


class _Page(HTMLParser):
    """The tags, attributes and texts of index.html."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, str]] = []
        self._open: list[str] = []
        self.inline_scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.texts.append((self._open[-1], data.strip()))
            if self._open[-1] in ("script", "style"):
                self.inline_scripts.append(data)


def _page() -> _Page:
    parser = _Page()
    parser.feed((WEB / web.INDEX).read_text(encoding="utf-8"))
    return parser


def _get(path: str, **headers: str) -> Response:
    api = SubmitApi(load_settings(env="test"))
    environ = EnvironBuilder(path=path, headers=list(headers.items())).get_environ()
    return api(Request(environ))


def test_the_manifest_is_the_folder() -> None:
    assert set(web.MANIFEST) == {path.name for path in WEB.iterdir() if path.is_file()}


def test_the_page_has_no_inline_script_style_or_handlers() -> None:
    page = _page()
    assert page.inline_scripts == []
    for tag, attributes in page.tags:
        assert "style" not in attributes, tag
        assert not [name for name in attributes if name.startswith("on")], (tag, attributes)
        if tag == "script":
            assert str(attributes.get("src")).startswith(web.ASSET_PREFIX)
        assert not str(attributes.get("href", "")).startswith("javascript:")
    assert ("html", {"lang": "en"}) in page.tags


def test_everything_the_page_and_the_modules_reference_is_served() -> None:
    page = _page()
    referenced = {
        value.removeprefix(web.ASSET_PREFIX)
        for _, attributes in page.tags
        for name, value in attributes.items()
        if name in ("src", "href") and value and value.startswith(web.ASSET_PREFIX)
    }
    for script in SCRIPTS:
        imports = re.findall(r"""from\s+["']\./([\w.-]+)["']""", script.read_text())
        assert imports or script.name in ("api.js", "dom.js"), script.name
        referenced.update(imports)
    assert {"app.js", "style.css"} <= referenced
    assert referenced <= set(web.MANIFEST)
    # Every module is reachable from app.js (none shipped unused).
    assert referenced | {web.INDEX} == set(web.MANIFEST)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_no_script_parses_strings_as_html_or_evaluates_them(script: Path) -> None:
    source = script.read_text()
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "DOMParser",
        "createContextualFragment",
        'setAttribute("style"',
        ".cssText",
    ):
        assert forbidden not in source, f"{script.name} uses {forbidden}"
    # setTimeout with a string argument is eval too.
    assert not re.search(r"setTimeout\(\s*[\"'`]", source)
    # The key is kept for the tab only.
    assert "localStorage" not in source


def test_the_contract_8_names_are_in_the_page() -> None:
    page = _page()
    labels = {text for tag, text in page.texts if tag == "label"}
    buttons = {text for tag, text in page.texts if tag == "button"}
    assert set(CONTRACT_8["labels"]) <= labels
    assert set(CONTRACT_8["buttons"]) <= buttons
    headings = {text for tag, text in page.texts if tag == "h2"}
    assert "Your transcripts" in headings
    library = next(a for tag, a in page.tags if tag == "section" and a.get("id") == "library")
    assert library["aria-labelledby"] == "library-heading"
    reader = (WEB / "reader.js").read_text()
    for name in ("TXT", "SRT", "WebVTT", "JSON"):
        assert f'"{name}"' in reader


def test_the_headings_do_not_skip_levels() -> None:
    levels = [int(tag[1]) for tag, _ in _page().tags if re.fullmatch(r"h[1-6]", tag)]
    assert levels[0] == 1
    assert all(after - before <= 1 for before, after in itertools.pairwise(levels))


def test_the_page_is_served_at_the_root_and_always_revalidated() -> None:
    response = _get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.get_data() == (WEB / web.INDEX).read_bytes()
    etag = response.headers["ETag"]
    again = _get("/", **{"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8")],
)
def test_assets_are_served_with_their_type_for_a_while(name: str, content_type: str) -> None:
    response = _get(f"/assets/{name}")
    assert response.status_code == 200
    assert response.content_type == content_type
    assert f"max-age={web.ASSET_MAX_AGE_SECONDS}" in response.headers["Cache-Control"]
    assert response.get_data() == (WEB / name).read_bytes()
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/nothing.js",
        "/assets/../app.py",
        "/assets/..%2F..%2Fsettings%2Fapi.py",
        "/assets/%2e%2e/errors.py",
        "/assets/",
        "/assets/web/index.html",
        "/assets/__init__.py",
        "/index.html.bak",
    ],
)
def test_anything_else_is_the_apis_404_problem(path: str) -> None:
    response = _get(path)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "not_found"


def test_the_web_routes_are_not_in_the_openapi_document() -> None:
    from podscribe.api.openapi import openapi_document

    paths = openapi_document("https://api.example.com")["paths"]
    assert "/" not in paths
    assert not [path for path in paths if path.startswith(web.ASSET_PREFIX)]


def test_functions_framework_hands_the_web_paths_to_submit() -> None:
    # Flask claims /static/ for its own files: the assets live under /assets/ instead.
    from functions_framework import create_app

    client = create_app("submit", str(SUBMIT_SOURCE), "http").test_client()
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    script = client.get(f"{web.ASSET_PREFIX}app.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
