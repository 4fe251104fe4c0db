"""The Podcasting 2.0 tags an item may carry: ``<podcast:transcript>`` and ``<podcast:person>``.

A feed is untrusted, so what these tags give is bounded the same way wherever it is read (the
well-formed ``iterparse`` path, and the tolerant path for malformed feeds, where feedparser
keeps only the last of repeated unknown tags and so a small :class:`html.parser.HTMLParser`
scan reads them instead): at most :data:`MAX_TRANSCRIPT_REFS` transcripts and
:data:`MAX_PERSONS` persons an item, every string length-capped, URLs only ``http(s)``. The
URLs are only recorded here; fetching one goes through the SSRF guard like any other fetch.

The spec (https://podcastindex.org/namespace/1.0) lets a channel list its regular cast:
an item without persons of its own inherits the channel's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element

__all__ = [
    "MAX_PERSONS",
    "MAX_TRANSCRIPT_REFS",
    "Person",
    "PublisherTranscriptRef",
    "ScannedItems",
    "element_person",
    "element_transcript",
    "first_distinct",
    "is_podcast_namespace",
    "person_from_attributes",
    "scan_items",
    "transcript_from_attributes",
]

MAX_TRANSCRIPT_REFS = 8
MAX_PERSONS = 16
_MAX_URL_CHARS = 2048
_MAX_NAME_CHARS = 200
_MAX_TOKEN_CHARS = 100
_NAMESPACES = frozenset(
    {
        "https://podcastindex.org/namespace/1.0",
        "http://podcastindex.org/namespace/1.0",
        "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
    }
)


@dataclass(frozen=True)
class PublisherTranscriptRef:
    """A ``<podcast:transcript>`` of an item: where the publisher's transcript is.

    Attributes:
        url: where it is (``http`` or ``https``).
        type: its declared MIME type, lower-cased (``text/vtt``, ``application/json``, ...).
        language: its declared language, when given.
        rel: ``captions`` when the publisher marks it as timed captions.
    """

    url: str
    type: str
    language: str | None = None
    rel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "type": self.type, "language": self.language, "rel": self.rel}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublisherTranscriptRef:
        return cls(
            url=str(data["url"]),
            type=str(data["type"]),
            language=_optional(data.get("language")),
            rel=_optional(data.get("rel")),
        )


@dataclass(frozen=True)
class Person:
    """A ``<podcast:person>``: someone who takes part (a host, a guest).

    Attributes:
        name: the name the tag holds.
        role: ``host``, ``guest``, ... (lower-cased; ``host`` when absent, as the spec says).
        group: ``cast``, ``writing``, ... (``cast`` when absent).
        img: a picture of them, when given.
        href: a page about them, when given.
    """

    name: str
    role: str = "host"
    group: str = "cast"
    img: str | None = None
    href: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "group": self.group,
            "img": self.img,
            "href": self.href,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Person:
        return cls(
            name=str(data["name"]),
            role=str(data.get("role") or "host"),
            group=str(data.get("group") or "cast"),
            img=_optional(data.get("img")),
            href=_optional(data.get("href")),
        )


def is_podcast_namespace(namespace: str) -> bool:
    """Whether an XML namespace is the Podcasting 2.0 one (its spellings in the wild)."""
    return namespace.rstrip("/") in _NAMESPACES


def transcript_from_attributes(
    attributes: Mapping[str, str | None],
) -> PublisherTranscriptRef | None:
    """The reference a ``<podcast:transcript>``'s attributes make, or None when unusable."""
    url = _url(attributes.get("url"))
    kind = _token(attributes.get("type"))
    if url is None or kind is None:
        return None
    return PublisherTranscriptRef(
        url=url,
        type=kind.split(";")[0].strip(),
        language=_token(attributes.get("language")),
        rel=_token(attributes.get("rel")),
    )


def person_from_attributes(attributes: Mapping[str, str | None], name: str) -> Person | None:
    """The person a ``<podcast:person>`` names, or None when it names nobody."""
    cleaned = " ".join(name.split())[:_MAX_NAME_CHARS]
    if not cleaned:
        return None
    return Person(
        name=cleaned,
        role=_token(attributes.get("role")) or "host",
        group=_token(attributes.get("group")) or "cast",
        img=_url(attributes.get("img")),
        href=_url(attributes.get("href")),
    )


def element_transcript(element: Element) -> PublisherTranscriptRef | None:
    """:func:`transcript_from_attributes` of a parsed element."""
    return transcript_from_attributes(dict(element.attrib))


def element_person(element: Element) -> Person | None:
    """:func:`person_from_attributes` of a parsed element."""
    return person_from_attributes(dict(element.attrib), "".join(element.itertext()))


def first_distinct(values: Iterable[Any], limit: int) -> tuple[Any, ...]:
    """The first ``limit`` values that are not None, without repeats."""
    kept: list[Any] = []
    for value in values:
        if value is not None and value not in kept:
            kept.append(value)
            if len(kept) == limit:
                break
    return tuple(kept)


@dataclass(frozen=True)
class ScannedItems:
    """What :func:`scan_items` found: per item (in document order) and at channel level."""

    transcripts: tuple[tuple[PublisherTranscriptRef, ...], ...]
    persons: tuple[tuple[Person, ...], ...]
    channel_persons: tuple[Person, ...]


def scan_items(document: str) -> ScannedItems:
    """Read the Podcasting 2.0 tags of a malformed feed, item by item.

    ``html.parser`` reads any text without raising; tags are matched by the ``podcast:``
    prefix the feed declares for the namespace (``podcast`` when it declares none).
    """
    scanner = _Scanner()
    scanner.feed(document)
    scanner.close()
    return ScannedItems(
        tuple(scanner.transcripts),
        tuple(scanner.persons),
        first_distinct(scanner.channel, MAX_PERSONS),
    )


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prefix = "podcast"
        self.transcripts: list[tuple[PublisherTranscriptRef, ...]] = []
        self.persons: list[tuple[Person, ...]] = []
        self.channel: list[Person | None] = []
        self._item_transcripts: list[PublisherTranscriptRef | None] | None = None
        self._item_persons: list[Person | None] = []
        self._person: dict[str, str | None] | None = None
        self._name: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("xmlns:") and is_podcast_namespace((value or "").strip()):
                self.prefix = name.removeprefix("xmlns:")
        if tag in ("item", "entry"):
            self._item_transcripts, self._item_persons = [], []
        elif tag == f"{self.prefix}:transcript" and self._item_transcripts is not None:
            if len(self._item_transcripts) < MAX_TRANSCRIPT_REFS:
                self._item_transcripts.append(transcript_from_attributes(attributes))
        elif tag == f"{self.prefix}:person":
            self._person, self._name = attributes, []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == f"{self.prefix}:person":
            self._person = None

    def handle_data(self, data: str) -> None:
        if self._person is not None and sum(map(len, self._name)) < _MAX_NAME_CHARS:
            self._name.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == f"{self.prefix}:person" and self._person is not None:
            person = person_from_attributes(self._person, "".join(self._name))
            self._person = None
            target = self._item_persons if self._item_transcripts is not None else self.channel
            if len(target) < MAX_PERSONS:
                target.append(person)
        elif tag in ("item", "entry") and self._item_transcripts is not None:
            self.transcripts.append(first_distinct(self._item_transcripts, MAX_TRANSCRIPT_REFS))
            self.persons.append(first_distinct(self._item_persons, MAX_PERSONS))
            self._item_transcripts = None


def _url(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > _MAX_URL_CHARS or not text.lower().startswith(("http://", "https://")):
        return None
    return text


def _token(value: str | None) -> str | None:
    text = " ".join((value or "").split()).lower()
    return text[:_MAX_TOKEN_CHARS] or None


def _optional(value: Any) -> str | None:
    return str(value) if value is not None else None
