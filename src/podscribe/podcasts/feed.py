"""Podcast RSS and Atom feeds, parsed safely and within bounds.

A feed is untrusted input. It is size-capped, decoded once (:mod:`podscribe.podcasts.feed_text`: the
checks below run on the decoded text, so UTF-16, UTF-32 and EBCDIC feeds get them too) and
re-encoded as UTF-8 for the parsers, and its items are counted before any parsing, so no feed
can make a worker parse more than ``MAX_FEED_ITEMS`` of them. A well-formed feed is then read
by defusedxml's ``iterparse`` with DTDs, entity declarations and external references forbidden
(billion-laughs bombs and external entities are ``unsafe_document``, never expanded); each item
is read and dropped as it ends, so the parse tree never holds more than one item: a 10 MB feed
of 20,000 items takes ~2 s and ~20 MiB (feedparser took ~25 s for 90k). Feeds that are merely
malformed (undefined HTML entities, stray ``&``, undeclared prefixes) are common; they go to
feedparser's tolerant parser, which is ~15x slower, so only when the text holds no DOCTYPE,
ENTITY, ELEMENT or ATTLIST declaration at all and lists at most ``MAX_TOLERANT_ITEMS`` items.

Finding one episode in the parsed feed is :mod:`podscribe.podcasts.feed_search`; the
Podcasting 2.0 tags an item carries (the publisher's transcripts, the people in it) are read
by :mod:`podscribe.podcasts.podcast_namespace`, bounded there.
"""

from __future__ import annotations

import calendar
import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from io import BytesIO
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree
import feedparser

from podscribe.errors import (
    TooLargeError,
    UnsafeDocumentError,
)
from podscribe.podcasts.feed_text import decode_feed, utf8_document
from podscribe.podcasts.podcast_namespace import (
    MAX_PERSONS,
    MAX_TRANSCRIPT_REFS,
    Person,
    PublisherTranscriptRef,
    element_person,
    element_transcript,
    first_distinct,
    is_podcast_namespace,
    scan_items,
)

__all__ = [
    "MAX_FEED_ITEMS",
    "MAX_TOLERANT_ITEMS",
    "Feed",
    "FeedEntry",
    "parse_feed",
]

# The largest real podcast feeds list a few thousand episodes; 20,000 items parse in ~1 s.
MAX_FEED_ITEMS = 20_000
# feedparser's tolerant parser takes ~0.3 ms an item: 5,000 bound it to a second or two.
MAX_TOLERANT_ITEMS = 5_000
_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?")
_ITEM_TAG = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
# An offset of 24 hours or more is no time zone: the timestamp cannot be trusted at all.
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})\s*$")
_ATOM = "http://www.w3.org/2005/Atom"
_TITLE_NAMESPACES = frozenset(
    {"", _ATOM, "http://purl.org/atom/ns#", "http://purl.org/rss/1.0/",
     "http://my.netscape.com/rdf/simple/0.9/"}
)  # fmt: skip
_DATE_TAGS = (
    "pubDate",
    f"{{{_ATOM}}}published",
    "{http://purl.org/dc/elements/1.1/}date",
    f"{{{_ATOM}}}updated",
    "{http://purl.org/dc/terms/}modified",
)
_FEED_ROOTS = frozenset({"rss", "feed", "RDF"})
# Beyond any episode (the same bound Apple's page is read with): a value not to be believed.
_MAX_DURATION_SECONDS = 10 * 24 * 3600.0


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed, as far as matching and transcription need it.

    Attributes:
        guid: the item's ``<guid>`` (None when absent).
        title: the item title ("" when absent).
        audio_url: the enclosure URL (an audio/video one preferred); None without one.
        enclosure_type: the enclosure's declared type.
        duration_seconds: ``itunes:duration`` in seconds, when given and readable.
        published_at: ``pubDate`` in UTC, when given and readable.
        transcripts: the item's ``<podcast:transcript>`` references, in feed order.
        persons: the item's ``<podcast:person>`` tags (the channel's when it has none).
    """

    guid: str | None
    title: str
    audio_url: str | None
    enclosure_type: str | None
    duration_seconds: float | None
    published_at: datetime | None
    transcripts: tuple[PublisherTranscriptRef, ...] = ()
    persons: tuple[Person, ...] = ()


@dataclass(frozen=True)
class Feed:
    """A parsed feed: the show title and its items, in feed order."""

    title: str
    entries: tuple[FeedEntry, ...]


def parse_feed(content: bytes, *, max_bytes: int) -> Feed:
    """Parse RSS/Atom bytes safely, with bounded work.

    Args:
        content: the feed as fetched.
        max_bytes: the size cap (the fetcher already caps; this guards other callers).

    Returns:
        The show title and its entries.

    Raises:
        TooLargeError: more than ``max_bytes``, or more items than a worker will parse.
        UnsafeDocumentError: a DTD, entity declaration or external reference, or no feed.
    """
    if len(content) > max_bytes:
        raise TooLargeError(f"feed larger than {max_bytes} bytes")
    text = decode_feed(content)
    items = len(_ITEM_TAG.findall(text))
    if items > MAX_FEED_ITEMS:
        raise TooLargeError(f"feed lists {items} items; at most {MAX_FEED_ITEMS} are read")
    document = utf8_document(text)
    try:
        return _parse_well_formed(document)
    except defusedxml.DefusedXmlException as error:
        raise UnsafeDocumentError(f"feed refused: {type(error).__name__}: {error}") from None
    except ParseError:
        pass
    # Malformed but possibly harmless: tolerated only with no declarations at all.
    if _DECLARATION.search(text):
        raise UnsafeDocumentError("feed refused: malformed XML with declarations")
    if items > MAX_TOLERANT_ITEMS:
        raise TooLargeError(
            f"malformed feed lists {items} items; at most {MAX_TOLERANT_ITEMS} are read"
        )
    return _parse_tolerant(document)


def _parse_well_formed(document: bytes) -> Feed:
    title: str | None = None
    entries: list[FeedEntry] = []
    channel_persons: list[Person | None] = []
    path: list[str] = []
    in_item = 0
    root_name = ""
    events: Iterator[tuple[str, Element]] = defusedxml.ElementTree.iterparse(
        BytesIO(document),
        events=("start", "end"),
        forbid_dtd=True,
        forbid_entities=True,
        forbid_external=True,
    )
    for event, element in events:
        name = _local(element.tag)
        if event == "start":
            root_name = root_name or name
            path.append(name)
            in_item += name in ("item", "entry")
            continue
        path.pop()
        if name in ("item", "entry"):
            in_item -= 1
            if in_item == 0:
                entries.append(_item_entry(element))
                element.clear()  # read and dropped: memory holds one item at a time
        elif in_item == 0 and path[-1:] in (["channel"], ["feed"]):
            if title is None and name == "title":
                title = _text(element)
            elif (
                name == "person"
                and _is_podcast_tag(element.tag)
                and len(channel_persons) < MAX_PERSONS
            ):
                channel_persons.append(element_person(element))
    if root_name not in _FEED_ROOTS and not entries:
        raise UnsafeDocumentError("the document is not an RSS or Atom feed")
    cast = first_distinct(channel_persons, MAX_PERSONS)
    return Feed(title=title or "", entries=_with_channel_persons(entries, cast))


def _with_channel_persons(
    entries: list[FeedEntry], cast: tuple[Person, ...]
) -> tuple[FeedEntry, ...]:
    """Items without persons of their own get the channel's (the spec's fallback)."""
    if not cast:
        return tuple(entries)
    return tuple(e if e.persons else dataclasses.replace(e, persons=cast) for e in entries)


def _is_podcast_tag(tag: Any) -> bool:
    return isinstance(tag, str) and is_podcast_namespace(_split(tag)[0])


def _item_entry(item: Element) -> FeedEntry:
    title = guid = duration = published = None
    enclosures: list[tuple[str, str | None]] = []
    transcripts: list[PublisherTranscriptRef | None] = []
    persons: list[Person | None] = []
    for child in item:
        tag = child.tag if isinstance(child.tag, str) else ""
        namespace, name = _split(tag)
        if is_podcast_namespace(namespace):
            if name == "transcript" and len(transcripts) < MAX_TRANSCRIPT_REFS:
                transcripts.append(element_transcript(child))
            elif name == "person" and len(persons) < MAX_PERSONS:
                persons.append(element_person(child))
        elif name == "title" and namespace in _TITLE_NAMESPACES and title is None:
            title = _text(child)
        elif tag in ("guid", f"{{{_ATOM}}}id") and guid is None:
            guid = _text(child) or None
        elif tag == "enclosure" and (child.get("url") or "").strip():
            enclosures.append((str(child.get("url")).strip(), child.get("type")))
        elif (
            name == "link"
            and namespace == _ATOM
            and child.get("rel") == "enclosure"
            and (child.get("href") or "").strip()
        ):
            enclosures.append((str(child.get("href")).strip(), child.get("type")))
        elif name == "duration" and "itunes" in namespace.lower() and duration is None:
            duration = _duration(_text(child))
    for tag in _DATE_TAGS:
        found = item.find(tag)
        if found is not None and (published := _date(_text(found))) is not None:
            break
    audio_url, enclosure_type = _choose_enclosure(enclosures)
    return FeedEntry(
        guid,
        title or "",
        audio_url,
        enclosure_type,
        duration,
        published,
        transcripts=first_distinct(transcripts, MAX_TRANSCRIPT_REFS),
        persons=first_distinct(persons, MAX_PERSONS),
    )


def _parse_tolerant(document: bytes) -> Feed:
    # Both parsers unescape references with int(): thousands of digits would raise.
    document = _CHARREF.sub(_representable_charref, document)
    parsed = feedparser.parse(
        BytesIO(document),
        sanitize_html=False,
        resolve_relative_uris=False,
        response_headers={"content-type": "application/xml; charset=utf-8"},
    )
    if not parsed.get("version") and not parsed.entries:
        raise UnsafeDocumentError("the document is not an RSS or Atom feed")
    entries = [_entry(raw) for raw in parsed.entries]
    # feedparser keeps only the last of repeated unknown tags: the Podcasting 2.0 ones are
    # read by a scan of their own, matched to the items by position when both count alike.
    scanned = scan_items(document.decode("utf-8", errors="replace"))
    if len(scanned.transcripts) == len(entries):
        entries = [
            dataclasses.replace(entry, transcripts=transcripts, persons=persons)
            for entry, transcripts, persons in zip(
                entries, scanned.transcripts, scanned.persons, strict=True
            )
        ]
    return Feed(
        title=str(parsed.feed.get("title", "")),
        entries=_with_channel_persons(entries, scanned.channel_persons),
    )


def _representable_charref(match: re.Match[bytes]) -> bytes:
    """A numeric character reference kept only when it names a character UTF-8 can carry.

    feedparser's loose parser calls ``chr(n).encode()`` on every ``&#n;``: a reference past
    U+10FFFF, to a surrogate or with thousands of digits raised ``ValueError`` out of it (an
    internal error). Such a reference names no character; it reads as U+FFFD.
    """
    digits = match[1] or match[2]
    value = int(digits, 16 if match[1] else 10) if len(digits) <= 8 else -1
    if 0 < value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
        return match[0]
    return "\ufffd".encode()


def _entry(raw: Any) -> FeedEntry:
    links = raw.get("links", [])
    audio_url, enclosure_type = _choose_enclosure(
        [
            (str(link["href"]).strip(), link.get("type"))
            for link in links
            if link.get("rel") == "enclosure" and str(link.get("href") or "").strip()
        ]
    )
    guid = raw.get("id") or None
    # The raw strings, not feedparser's *_parsed: the same date rules on both paths.
    published = _date(raw.get("published")) or _date(raw.get("updated"))
    return FeedEntry(
        guid=str(guid).strip() if guid else None,
        title=str(raw.get("title", "")).strip(),
        audio_url=audio_url,
        enclosure_type=enclosure_type,
        duration_seconds=_duration(raw.get("itunes_duration")),
        published_at=published,
    )


def _choose_enclosure(enclosures: list[tuple[str, str | None]]) -> tuple[str | None, str | None]:
    """The first audio or video enclosure, else the first (podcast apps choose the same)."""
    for url, kind in enclosures:
        if str(kind or "").startswith(("audio/", "video/")):
            return url, str(kind)
    if enclosures:
        url, kind = enclosures[0]
        return url, (str(kind) if kind else None)
    return None, None


def _local(tag: Any) -> str:
    return _split(tag)[1] if isinstance(tag, str) else ""


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def _text(element: Element) -> str:
    return "".join(element.itertext()).strip()


def _date(value: Any) -> datetime | None:
    """A feed date (RFC 822 as RSS says, or ISO 8601 as Atom does) in UTC, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    offset = _OFFSET.search(text)
    if offset and (int(offset[2]) > 23 or int(offset[3]) > 59):
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            # Other spellings real feeds use (asctime, "2019-01-07 06:00", foreign month names).
            fallback = feedparser.datetimes._parse_date(text)
            if not fallback:
                return None
            return datetime.fromtimestamp(calendar.timegm(fallback), tz=UTC)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _duration(value: Any) -> float | None:
    """``itunes:duration`` is seconds, ``MM:SS`` or ``HH:MM:SS``.

    ``float()`` also reads ``nan``, ``inf`` and ``1e999``: such values, negative parts and
    lengths past ``_MAX_DURATION_SECONDS`` are unknown durations, never numbers that would
    reach a job row (PostgreSQL's JSON refuses NaN) or a timeout.
    """
    if not value:
        return None
    try:
        parts = [float(part) for part in str(value).strip().split(":")]
    except ValueError:
        return None
    if not 1 <= len(parts) <= 3 or not all(math.isfinite(part) and part >= 0 for part in parts):
        return None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds if seconds <= _MAX_DURATION_SECONDS else None
