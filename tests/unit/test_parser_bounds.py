"""Hostile feeds, lookup answers and pages: bounded work, clear errors, checks on decoded text."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from podscribe.errors import TooLargeError, UnsafeDocumentError
from podscribe.podcasts.feed import MAX_FEED_ITEMS, MAX_TOLERANT_ITEMS, parse_feed
from podscribe.podcasts.lookup import parse_lookup
from podscribe.podcasts.page import parse_episode_page

CAP = 10_485_760


def _feed(items: int, *, extra: str = "", declaration: str = '<?xml version="1.0"?>') -> str:
    body = "".join(
        f"<item><title>Episode {i}{extra}</title><guid>g-{i}</guid>"
        f"<enclosure url='https://cdn.example.com/{i}.mp3' type='audio/mpeg'/></item>"
        for i in range(items)
    )
    return f"{declaration}<rss version='2.0'><channel><title>Show</title>{body}</channel></rss>"


# The comment is not well-formed XML ("--" inside it), so the strict parser stops before the
# DOCTYPE and only the check on the decoded text stands between it and the tolerant parser.
MALFORMED_WITH_DTD = (
    '<?xml version="1.0" encoding="{encoding}"?><!-- a -- b -->'
    '<!DOCTYPE rss [<!ENTITY x "expanded">]><rss><channel><title>&x; & broken</title>'
    "<item><title>&x;</title><guid>g</guid></item></rss>"
)


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [("UTF-16", "utf-16"), ("UTF-16", "utf-16-le"), ("UTF-16", "utf-16-be"),
     ("UTF-32", "utf-32"), ("UTF-32", "utf-32-be"), ("IBM037", "cp037")],
    ids=["utf-16-bom", "utf-16-le", "utf-16-be", "utf-32-bom", "utf-32-be", "ebcdic"],
)  # fmt: skip
def test_declarations_are_refused_in_any_encoding(encoding: str, codec: str) -> None:
    """A byte regex missed these: the DTD check reads the decoded text."""
    document = MALFORMED_WITH_DTD.format(encoding=encoding).encode(codec)
    with pytest.raises(UnsafeDocumentError, match="declarations"):
        parse_feed(document, max_bytes=CAP)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32-le", "cp037"])
def test_feeds_in_wide_encodings_still_parse(codec: str) -> None:
    label = "IBM037" if codec == "cp037" else codec.upper()[:6]
    extra = " é" if codec == "cp037" else " — é"
    text = _feed(3, extra=extra, declaration=f'<?xml version="1.0" encoding="{label}"?>')
    feed = parse_feed(text.encode(codec), max_bytes=CAP)
    assert [entry.title for entry in feed.entries] == [f"Episode {i}{extra}" for i in range(3)]


def test_a_latin_1_feed_reads_its_c1_bytes_as_windows_1252() -> None:
    text = _feed(1, declaration='<?xml version="1.0" encoding="ISO-8859-1"?>')
    document = text.encode("latin-1").replace(b"Episode 0", b"\x93Episode\x94 0 \x96 \xe9")
    assert parse_feed(document, max_bytes=CAP).entries[0].title == "\u201cEpisode\u201d 0 \u2013 é"


def test_a_feed_of_ninety_thousand_items_is_refused_at_once() -> None:
    document = _feed(90_000).encode()
    assert len(document) > 10_000_000
    started = time.monotonic()
    with pytest.raises(TooLargeError, match=f"at most {MAX_FEED_ITEMS}"):
        parse_feed(document, max_bytes=len(document))
    assert time.monotonic() - started < 2.0  # counting items, not parsing them


def test_a_malformed_feed_gets_the_tolerant_parser_only_within_its_bound() -> None:
    document = _feed(MAX_TOLERANT_ITEMS + 1, extra=" & more").encode()
    started = time.monotonic()
    with pytest.raises(TooLargeError, match=f"at most {MAX_TOLERANT_ITEMS}"):
        parse_feed(document, max_bytes=CAP)
    assert time.monotonic() - started < 2.0
    assert len(parse_feed(_feed(50, extra=" & more").encode(), max_bytes=CAP).entries) == 50


def test_the_largest_feed_accepted_parses_in_bounded_time_and_memory() -> None:
    """MAX_FEED_ITEMS items in ~10 MB, parsed in a child process whose peak RSS is measured."""
    script = textwrap.dedent(
        f"""
        import json, resource, time
        from podscribe.podcasts.feed import MAX_FEED_ITEMS, parse_feed
        padding = "x" * 300
        items = "".join(
            f"<item><title>Episode {{i}}</title><guid>g-{{i}}</guid>"
            f"<description>{{padding}}</description>"
            f"<pubDate>Mon, 07 Jan 2019 06:00:00 GMT</pubDate>"
            f"<enclosure url='https://cdn.example.com/{{i}}.mp3' type='audio/mpeg'/></item>"
            for i in range(MAX_FEED_ITEMS)
        )
        document = f"<rss version='2.0'><channel><title>S</title>{{items}}</channel></rss>".encode()
        assert len(document) <= {CAP}, len(document)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        feed = parse_feed(document, max_bytes={CAP})
        seconds = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"entries": len(feed.entries), "bytes": len(document),
                          "seconds": seconds, "before_kib": before, "peak_kib": peak}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    figures = json.loads(done.stdout)
    assert figures["entries"] == MAX_FEED_ITEMS
    assert figures["seconds"] < 8.0, figures
    # The document and its entries are held; the parse tree is not (items are dropped as read).
    assert (figures["peak_kib"] - figures["before_kib"]) < 64 * 1024, figures  # ~21 MiB measured


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"results": [{"wrapperType": "podcastEpisode", "trackId": 1, "trackTimeMillis": '
         + b"9" * 400 + b"}]}", "400-digit number"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"results": [{"trackTimeMillis": 1e999}]}', "out of range"),
        (b'{"results": [{"trackTimeMillis": NaN}]}', "NaN"),
    ],
    ids=["400-digits", "5000-deep", "infinite", "nan"],
)  # fmt: skip
def test_absurd_lookup_answers_are_unsafe_documents(body: bytes, message: str) -> None:
    with pytest.raises(UnsafeDocumentError, match=message) as refused:
        parse_lookup(body)
    assert refused.value.code == "unsafe_document"


def test_a_page_with_absurd_values_says_nothing_rather_than_failing() -> None:
    huge = "9" * 400
    page = (
        '<script type="application/json" id="serialized-server-data">'
        f'[{{"id": "7", "title": "T", "duration": {huge}}}]</script>'
        '<script type="application/ld+json">' + "[" * 5000 + "]" * 5000 + "</script>"
        '<script type="application/json">{"id": "7", "title": "T", "duration": 1e308}</script>'
    ).encode()
    assert parse_episode_page(page, 7).duration_seconds is None
