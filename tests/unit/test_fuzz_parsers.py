"""Bounded fuzzing of every parser that reads what strangers write.

The Apple link parser, the SSRF guard, the feed parser (with its decoder) and the iTunes lookup
parser each get arbitrary text and bytes, hostile-but-structured documents (random XML nesting,
entities, DTDs and encoding declarations; JSON with huge numbers and deep nesting) and mutated
real spellings. Two kinds of property hold:

- nothing escapes but podscribe's own errors (:class:`~podscribe.errors.PodscribeError`
  subclasses): an ``internal error`` is a bug, and so is a hang (each test has a deadline);
- what parses is consistent: a link round-trips its ids, a generated feed gives back its items,
  a lookup answer its episodes, and the guard never allows a non-global address however it is
  spelled.

Every test is bounded (``max_examples``, ``deadline``): the file runs in well under a minute on
two cores. Under ``CI=true`` the ``ci`` profile of ``tests/conftest.py`` derandomizes it, so a
CI run always tries the same examples. No test touches the network: the guard gets injected
resolvers, as in ``test_net_guard_properties.py``.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls

from podscribe import errors
from podscribe.egress.guard import (
    GuardDecision,
    Resolver,
    check_spelling,
    check_url,
    non_global_reason,
)
from podscribe.errors import EpisodeLinkError, PodscribeError
from podscribe.podcasts import EpisodeRef, parse_episode_url
from podscribe.podcasts.feed import MAX_FEED_ITEMS, Feed, parse_feed
from podscribe.podcasts.feed_search import find_entry
from podscribe.podcasts.feed_text import decode_feed
from podscribe.podcasts.lookup import parse_lookup
from podscribe.settings import load_settings
from tests.unit.test_net_guard_properties import PUBLIC, embeddings, non_global_v4, non_global_v6

T = TypeVar("T")

SETTINGS = load_settings(env="test")
CAP = 10_485_760
TEN_DAYS = 10 * 24 * 3600.0
_QUICK = settings(max_examples=300, deadline=1000)
_DOCUMENTS = settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])


def podscribe_or_result(parse: Callable[[], T]) -> T | PodscribeError:
    """The parse's result, or the podscribe error it raised; anything else fails the test."""
    try:
        return parse()
    except PodscribeError as error:
        refused = error
    assert type(refused).__module__ == errors.__name__
    assert isinstance(refused.code, str) and refused.code
    return refused


# --------------------------------------------------------------------------- Apple links

REAL_LINKS = [
    "https://podcasts.apple.com/us/podcast/urbana-podcast-724-by-david-penn/id1531349107?i=1000748574256",
    "https://podcasts.apple.com/podcast/id1135137367?i=1000482637777",
    "https://podcasts.apple.com/us/podcast/207-whitney-webb-returns/id1135137367/?i=1000482637777",
    "https://embed.podcasts.apple.com/us/podcast/119-potluck-7/id1544142288?i=1000605336055",
    "https://embed.podcasts.apple.com/us/podcast/x/id1574474152?i=1000527341014&amp;itsct=p&amp;ls=1",
    "http://itunes.apple.com/us/podcast/explanation-of-simpsons-rule/id414308064?i=90319640",
    "https://podcasts.apple.com/de/podcast/pakistan/id409553739?i=1000477131403&l=en?l=en&i=1000477131403",
    "https://podcasts.apple.com/us/podcast/%E5%AE%87%E5%AE%99%E4%B8%AD%E7%8C%AB/id1659350101?i=1000614022758",
    "https://podcasts.apple.com/us/podcast/宇宙中猫/id1659350101?i=1000614022758",
    "itms-podcasts://podcasts.apple.com/us/podcast/thundercat/id1678378239?i=1000608744027",
    "podcasts://podcasts.apple.com/us/podcast/thundercat/id1678378239?i=1000608744027",
    "podcasts.apple.com/us/podcast/episode-620-who-said/id1535809341?i=1000610181965&uo=4",
    "https://podcasts.apple.com/us/podcast/the-joe-budden-podcast/id1535809341?uo=2",
    "https://podcasts.apple.com.evil.example/us/podcast/x/id1135137367?i=1000482637777",
    "https://podcasts.apple.com/WebObjects/MZStore.woa/wa/viewTop?cc=us&id=179537&popId=3",
]
_INTERESTING = [*"%@:/?#&=\\[]. \t\x00~", "\u3002", "\uff0f", "id", "i=", "0", "9", "%2F"]


@st.composite
def mutated_links(draw: st.DrawFn) -> str:
    """A real link spelling with a few insertions, deletions, repeats or case changes."""
    link = draw(st.sampled_from(REAL_LINKS))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(link)))
        kind = draw(st.sampled_from(["insert", "delete", "repeat", "upper", "escape"]))
        if kind == "insert":
            piece = draw(st.sampled_from(_INTERESTING) | st.text(max_size=3))
            link = link[:at] + piece + link[at:]
        elif kind == "delete":
            link = link[:at] + link[at + draw(st.integers(1, 8)) :]
        elif kind == "repeat":
            link = link[:at] + link[at : at + 12] + link[at:]
        elif kind == "upper":
            link = link[:at] + link[at:].upper()
        elif at < len(link):
            link = link[:at] + quote(link[at], safe="") + link[at + 1 :]
    return link


@_QUICK
@given(st.text(max_size=300) | urls() | mutated_links())
def test_any_link_text_is_parsed_or_refused_as_a_link_error(text):
    result = podscribe_or_result(lambda: parse_episode_url(text))
    if isinstance(result, PodscribeError):
        assert isinstance(result, EpisodeLinkError)
        return
    assert 0 < result.collection_id < 10**19 and 0 < result.episode_id < 10**19
    assert result.country is None or (len(result.country) == 2 and result.country.isalpha())
    # What parsed names the same episode when written canonically.
    country = result.country or "us"
    canonical = f"https://podcasts.apple.com/{country}/podcast/id{result.collection_id}"
    assert parse_episode_url(f"{canonical}?i={result.episode_id}") == result


_ids = st.integers(1, 10**19 - 1)
_slug = st.text(max_size=30).map(lambda text: quote(text, safe=""))
_extra = st.lists(
    st.tuples(st.from_regex(r"\A[a-hj-z]{1,5}\Z"), st.from_regex(r"\A[A-Za-z0-9-]{0,8}\Z")),
    max_size=3,
)
_FORMS = [
    "https://podcasts.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "https://podcasts.apple.com/{cc}podcast/{slug}id{show}/?i={ep}{extra}#transcript",
    "http://itunes.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "https://embed.podcasts.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "podcasts://podcasts.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "itms-podcasts://podcasts.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "podcasts.apple.com/{cc}podcast/{slug}id{show}?i={ep}{extra}",
    "HTTPS://PODCASTS.APPLE.COM/{cc}podcast/{slug}id{show}?i={ep}{extra}",
]


@_QUICK
@given(
    st.sampled_from(_FORMS),
    _ids,
    _ids,
    st.none() | st.from_regex(r"\A[a-z]{2}\Z"),
    _slug,
    _extra,
)
def test_a_generated_episode_link_round_trips_its_ids(  # noqa: PLR0917 - one per strategy
    form, show, episode, country, slug, extra
):
    assume(slug not in ("", "podcast") and not slug.startswith("id"))
    link = form.format(
        cc=f"{country}/" if country else "",
        slug=f"{slug}/",
        show=show,
        ep=episode,
        extra="".join(f"&{key}={value}" for key, value in extra),
    )
    ref = parse_episode_url(link)
    assert ref == EpisodeRef(show, episode)
    assert ref.country == country


# --------------------------------------------------------------------------- the SSRF guard


def _fixed(answers: list[str]) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return answers

    return resolve


def _guard_decision(url: str, answers: list[str]) -> GuardDecision:
    """check_url must answer every input with a decision and raise nothing at all."""
    assert check_spelling(url) is None or isinstance(check_spelling(url), str)
    decision = check_url(url, SETTINGS, resolver=_fixed(answers))
    assert isinstance(decision, GuardDecision) and decision.url == url
    assert decision.allowed == (decision.reason is None)
    return decision


_answers = st.lists(
    st.ip_addresses().map(str) | st.sampled_from(["", "not-an-address", "fe80::1%eth0", PUBLIC]),
    max_size=4,
)


@_QUICK
@given(st.text(max_size=200) | urls() | mutated_links(), _answers)
def test_the_guard_decides_any_url_and_allows_only_global_answers(url, answers):
    decision = _guard_decision(url, answers)
    if decision.allowed:
        assert decision.port in SETTINGS.allowed_ports
        assert decision.addresses
        for address in decision.addresses:
            parsed = ipaddress.ip_address(address)
            assert non_global_reason(parsed) is None and parsed.is_global


def _octet_spelling(octet: int, how: str) -> str:
    return {"dec": str(octet), "hex": hex(octet), "HEX": f"0X{octet:X}", "oct": f"0{octet:o}"}[how]


@st.composite
def ipv4_spellings(draw: st.DrawFn) -> tuple[str, str]:
    """(a host spelling of a non-global IPv4 address, the address it denotes)."""
    address = draw(non_global_v4)
    assert isinstance(address, ipaddress.IPv4Address)
    value, octets = int(address), [int(part) for part in str(address).split(".")]
    hows = st.sampled_from(["dec", "hex", "HEX", "oct"])
    forms = [
        str(address),
        str(value),
        hex(value),
        f"0{value:o}",
        ".".join(_octet_spelling(octet, draw(hows)) for octet in octets),
        ".".join(f"{octet:03d}" for octet in octets),
        f"{octets[0]}.{octets[1]}.{value & 0xFFFF}",
        f"{octets[0]}.{value & 0xFFFFFF}",
        f"{address}.",
        str(address).replace(".", draw(st.sampled_from(["\u3002", "\uff0e", "\uff61", "%2e"]))),
        str(address).translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}),
        "".join(f"%{ord(ch):02x}" for ch in str(address)),
    ]
    embedded = [f"[{form}]" for form in embeddings(address) if int(form) > 1]
    forms += [
        *embedded,
        f"[::ffff:{address}]",
        f"[::FFFF:{address}]",
        f"[0:0:0:0:0:ffff:{address}]",
        f"[64:ff9b::{address}]",
        f"[::{address}]",
    ]
    spelled = draw(st.sampled_from(forms))
    denoted = str(address)
    if spelled.startswith("["):
        denoted = str(ipaddress.IPv6Address(spelled[1:-1]))
    return spelled, denoted


@st.composite
def ipv6_spellings(draw: st.DrawFn) -> tuple[str, str]:
    address = draw(non_global_v6)
    assert isinstance(address, ipaddress.IPv6Address)
    forms = [
        f"[{address.compressed}]",
        f"[{address.exploded}]",
        f"[{address.exploded.upper()}]",
        f"[{address.compressed}%25eth0]",
        f"[{address.compressed}%eth0]",
        address.compressed,
        f"[{address.compressed}.]",
        f"[{address.compressed}]".replace(":", "%3a", 1),
    ]
    return draw(st.sampled_from(forms)), str(address)


@settings(max_examples=400, deadline=1000)
@given(
    ipv4_spellings() | ipv6_spellings(),
    st.sampled_from(["http://{}/", "https://{}:443/x", "HTTP://{}:80", "http://good.example@{}/"]),
)
def test_a_non_global_address_is_refused_however_it_is_spelled(spelling, template):
    """The resolver answers what the spelling denotes, as a lenient stack would."""
    host, denoted = spelling
    decision = _guard_decision(template.format(host), [denoted])
    assert not decision.allowed, (host, decision)


# --------------------------------------------------------------------------- feeds

_TAGS = [
    "rss", "channel", "item", "entry", "title", "guid", "id", "enclosure", "link", "pubDate",
    "itunes:duration", "dc:date", "feed", "description", "x", "a:b", "rdf:RDF",
]  # fmt: skip
_ATTRS = ["url", "type", "href", "rel", "xmlns", "xmlns:itunes", "xmlns:a", "version", "x:y"]
_FRAGMENTS = [
    "&amp;", "&lt;", "&#65;", "&#x1F600;", "&#0;", "&#99999999;", "&nbsp;", "&bogus;", "&", "&#x;",
    "&lt", "]]>", "<![CDATA[ <item> ]]>", "<!-- <item> -->", "<?pi x?>", "<", ">", "\x00", "\ufffe",
    "audio/mpeg", "1:02:03", "nan", "1e999", "-5", "Wed, 01 May 2024 09:00:00 +0000",
    "2024-05-01T09:00:00Z", "Mon, 07 Jan 2019 06:00:00 +9999",
]  # fmt: skip
_DOCTYPES = [
    "",
    "<!DOCTYPE rss>",
    '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE rss SYSTEM "file:///etc/passwd">',
    '<!DOCTYPE rss [<!ENTITY x SYSTEM "http://169.254.169.254/">]>',
    '<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.1/"> %p;]>',
    "<!doctype rss>",
    "<! DOCTYPE rss>",
]
_LABELS = [
    "utf-8", "UTF-16", "utf-16le", "utf-32", "iso-8859-1", "latin1", "windows-1252", "cp037",
    "ebcdic-cp-us", "shift_jis", "utf-7", "koi8-r", "bogus", "", "x" * 60,
]  # fmt: skip
_CODECS = [
    "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be", "cp037",
    "latin-1", "cp1252", "shift_jis", "utf-7",
]  # fmt: skip

_leaf = st.sampled_from(_FRAGMENTS) | st.text(max_size=12)


def _element(draw: st.DrawFn, children: list[str]) -> str:
    tag = draw(st.sampled_from(_TAGS) | st.from_regex(r"\A[A-Za-z_][\w.:-]{0,8}\Z"))
    attributes = draw(st.lists(st.tuples(st.sampled_from(_ATTRS), _leaf), max_size=3))
    rendered = "".join(
        f" {name}={quoteattr(value)}" if draw(st.booleans()) else f' {name}="{value}"'
        for name, value in attributes
    )
    if not children and draw(st.booleans()):
        return f"<{tag}{rendered}/>"
    closing = "" if draw(st.integers(0, 9)) == 0 else f"</{tag}>"
    return f"<{tag}{rendered}>{''.join(children)}{closing}"


_xml_tree = st.recursive(
    _leaf,
    lambda inner: st.builds(list, st.lists(inner, max_size=4)).flatmap(
        lambda children: st.composite(lambda draw: _element(draw, children))()
    ),
    max_leaves=40,
)


@st.composite
def hostile_feeds(draw: st.DrawFn, *, declared: bool = False) -> tuple[str, bytes]:
    """(the text, its bytes): random nesting, entities, DTDs and encoding declarations.

    With ``declared``, the document always carries a DOCTYPE (or entity) declaration.
    """
    label = draw(st.sampled_from(_LABELS))
    prolog = draw(
        st.sampled_from(
            ["", '<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{label}"?>',
             f"<?xml version='1.0' encoding='{label}' standalone='yes'?>", " <?xml?>"]
        )
    )  # fmt: skip
    doctype = draw(st.sampled_from(_DOCTYPES[1:] if declared else _DOCTYPES))
    root = draw(st.sampled_from(["rss", "feed", "rdf:RDF", "html", "x"]))
    body = "".join(draw(st.lists(_xml_tree, max_size=6)))
    text = f'{prolog}{doctype}<{root} version="2.0"><channel>{body}</channel></{root}>'
    codec = draw(st.sampled_from(_CODECS))
    content = text.encode(codec, errors="replace")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(content)))
        content = content[:at] + draw(st.binary(min_size=1, max_size=3)) + content[at + 1 :]
    return text, content


def _content(feed: tuple[str, bytes]) -> bytes:
    return feed[1]


def _assert_sane(feed: Feed) -> None:
    assert isinstance(feed.title, str) and len(feed.entries) <= MAX_FEED_ITEMS
    for entry in feed.entries:
        assert entry.guid is None or (isinstance(entry.guid, str) and entry.guid)
        assert isinstance(entry.title, str)
        assert entry.audio_url is None or (
            entry.audio_url and entry.audio_url.strip() == entry.audio_url
        )
        if entry.duration_seconds is not None:
            assert math.isfinite(entry.duration_seconds)
            assert 0 <= entry.duration_seconds <= TEN_DAYS
        if entry.published_at is not None:
            assert entry.published_at.utcoffset() == timedelta(0)


@_DOCUMENTS
@given(st.binary(max_size=2000) | hostile_feeds().map(_content))
def test_any_bytes_are_a_feed_or_a_podscribe_error(content):
    result = podscribe_or_result(lambda: parse_feed(content, max_bytes=CAP))
    if isinstance(result, Feed):
        _assert_sane(result)
        for entry in result.entries[:3]:
            found = partial(
                find_entry,
                result,
                guid=entry.guid,
                audio_url=entry.audio_url,
                title=entry.title,
                published_at=entry.published_at,
            )
            podscribe_or_result(found)


_field = (
    st.sampled_from(_FRAGMENTS) | st.text(max_size=30) | st.from_regex(r"\A[0-9:.eE+-]{1,12}\Z")
)


@_DOCUMENTS
@given(st.lists(st.tuples(_field, _field, _field, _field), min_size=1, max_size=4), st.booleans())
def test_item_fields_of_any_value_read_as_sane_values(items, well_formed):
    """Durations, dates, GUIDs and enclosures as a hostile feed writes them, escaped or not."""
    put = escape if well_formed else str
    document = (
        '<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><title>t</title>'
        + "".join(
            f"<item><guid>{put(guid)}</guid><pubDate>{put(date)}</pubDate>"
            f'<enclosure url={quoteattr(url) if well_formed else repr(url)} type="audio/mpeg"/>'
            f"<itunes:duration>{put(duration)}</itunes:duration></item>"
            for guid, date, url, duration in items
        )
        + "</channel></rss>"
    ).encode("utf-8", errors="replace")
    result = podscribe_or_result(lambda: parse_feed(document, max_bytes=CAP))
    if isinstance(result, Feed):
        _assert_sane(result)


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_feeds(declared=True))
def test_a_feed_whose_decoded_text_declares_a_dtd_never_parses(feed):
    _, content = feed
    decoded = decode_feed(content)
    assume("<!DOCTYPE" in decoded.upper() or "<!ENTITY" in decoded.upper())
    result = podscribe_or_result(lambda: parse_feed(content, max_bytes=CAP))
    assert isinstance(result, PodscribeError)
    assert result.code in ("unsafe_document", "too_large")


@settings(max_examples=25, deadline=10_000)
@given(
    st.integers(1, 30_000),
    st.sampled_from(["title", "guid", "x", "itunes:duration"]),
    st.booleans(),
)
def test_deep_nesting_inside_an_item_is_bounded(depth, where, closed):
    inner = "<a>" * depth + "deep" + ("</a>" * depth if closed else "")
    document = (
        '<rss xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel><item>'
        f"<{where}>{inner}</{where}><guid>g</guid></item></channel></rss>"
    ).encode()
    result = podscribe_or_result(lambda: parse_feed(document, max_bytes=CAP))
    if isinstance(result, Feed):
        _assert_sane(result)


_xml_text = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"),
    max_size=40,
)
_item = st.fixed_dictionaries(
    {
        "guid": _xml_text.filter(lambda text: bool(text.strip())),
        "title": _xml_text,
        "path": _xml_text,
        "published": st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        ).map(lambda moment: moment.replace(microsecond=0)),
        "duration": st.integers(0, int(TEN_DAYS)),
    }
)


def _rss_item(item: dict[str, Any], clock: bool) -> str:
    url = f"https://cdn.example.com/{quote(item['path'])}.mp3"
    seconds = item["duration"]
    duration = (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if clock else str(seconds)
    )
    return (
        f"<item><title>{escape(item['title'])}</title>"
        f'<guid isPermaLink="false">{escape(item["guid"])}</guid>'
        f"<pubDate>{format_datetime(item['published'])}</pubDate>"
        f'<enclosure url={quoteattr(url)} type="audio/mpeg" length="1"/>'
        f"<itunes:duration>{duration}</itunes:duration></item>"
    )


@_DOCUMENTS
@given(
    st.lists(_item, min_size=1, max_size=8, unique_by=lambda item: str(item["guid"]).strip()),
    _xml_text,
    st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-16-le", "utf-16-be"]),
    st.booleans(),
)
def test_a_generated_feed_gives_back_its_items_in_any_encoding(items, show, codec, clock):
    text = (
        f'<?xml version="1.0" encoding="{codec}"?>'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>{escape(show)}</title>"
        + "".join(_rss_item(item, clock) for item in items)
        + "</channel></rss>"
    )
    content = text.encode(codec)
    assert decode_feed(content).lstrip("\ufeff") == text
    feed = parse_feed(content, max_bytes=CAP)
    _assert_sane(feed)
    assert feed.title == show.strip()
    assert [entry.guid for entry in feed.entries] == [item["guid"].strip() for item in items]
    for item, entry in zip(items, feed.entries, strict=True):
        assert entry.title == item["title"].strip()
        assert entry.published_at == item["published"]
        assert entry.duration_seconds == item["duration"]
        assert entry.enclosure_type == "audio/mpeg"
        assert find_entry(feed, guid=item["guid"]) == entry
        assert entry.audio_url is not None
        assert find_entry(feed, guid=item["guid"], audio_url=entry.audio_url) == entry


# --------------------------------------------------------------------------- lookup answers

_KEYS = [
    "results", "resultCount", "wrapperType", "trackId", "trackName", "episodeGuid", "episodeUrl",
    "trackTimeMillis", "releaseDate", "feedUrl", "collectionName", "kind",
]  # fmt: skip
_NUMBER_TOKENS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(1, 5000).map(lambda digits: "9" * digits),
    st.integers(1, 400).map(lambda digits: "-" + "1" * digits + ".5e" + "9" * (digits % 5 + 1)),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "-1e-999",
            "-0",
            "0.0",
            "1E400",
            "9223372036854775808",
            "18446744073709551616",
            "123456789012345678901",
            "true",
            "false",
            "null",
        ]
    ),
)
_string_tokens = (st.text(max_size=20) | st.sampled_from([*_KEYS, "track", "podcastEpisode"])).map(
    json.dumps
)
_json_tokens = st.recursive(
    _NUMBER_TOKENS | _string_tokens,
    lambda inner: (
        st.lists(inner, max_size=5).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(_string_tokens, inner), max_size=5).map(
            lambda pairs: "{" + ",".join(f"{key}:{value}" for key, value in pairs) + "}"
        )
    ),
    max_leaves=40,
)


@st.composite
def hostile_lookups(draw: st.DrawFn) -> bytes:
    """A lookup-shaped answer whose records hold values of any JSON type and size."""
    records = []
    for _ in range(draw(st.integers(0, 5))):
        wrapper = draw(st.sampled_from(['"track"', '"podcastEpisode"']) | _json_tokens)
        fields = draw(st.lists(st.tuples(st.sampled_from(_KEYS), _json_tokens), max_size=8))
        pairs = [f'"wrapperType":{wrapper}'] + [f'"{key}":{value}' for key, value in fields]
        records.append("{" + ",".join(pairs) + "}")
    count, listed = draw(_NUMBER_TOKENS), ",".join(records)
    text = f'{{"resultCount":{count},"results":[{listed}]}}'
    return text.encode(draw(st.sampled_from(["utf-8", "utf-16", "utf-32-le"])), "surrogatepass")


@st.composite
def deep_json(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 30_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"results":', "}"), ('{"a":[', "]}")]))
    tail = closer * depth if draw(st.booleans()) else ""
    return (opener * depth + "1" + tail).encode()


def _assert_lookup_sane(content: bytes) -> None:
    answer = podscribe_or_result(lambda: parse_lookup(content))
    if isinstance(answer, PodscribeError):
        assert answer.code in ("unsafe_document", "episode_not_found")
        return
    assert answer.show is None or isinstance(answer.show, str)
    for episode in answer.episodes:
        assert isinstance(episode.episode_id, int) and episode.episode_id > 0
        assert answer.episode(episode.episode_id) is not None
        if episode.duration_seconds is not None:
            assert math.isfinite(episode.duration_seconds) and episode.duration_seconds > 0
        json.dumps(
            {"id": episode.episode_id, "duration": episode.duration_seconds}, allow_nan=False
        )


@_DOCUMENTS
@given(st.binary(max_size=500) | hostile_lookups() | deep_json() | _json_tokens.map(str.encode))
def test_any_lookup_answer_is_read_or_refused_with_a_podscribe_error(content):
    _assert_lookup_sane(content)


@_DOCUMENTS
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "wrapperType": st.just("podcastEpisode"),
                "trackId": st.integers(1, 2**63 - 1),
                "trackName": st.text(max_size=20),
                "trackTimeMillis": st.integers(1, 10**12),
                "episodeUrl": urls(),
            }
        ),
        max_size=6,
        unique_by=lambda record: record["trackId"],
    ),
    st.booleans(),
)
def test_a_generated_lookup_answer_gives_back_its_episodes(records, with_show):
    show = [{"wrapperType": "track", "collectionName": "Show", "feedUrl": "https://x.example/f"}]
    results: list[dict[str, Any]] = (show if with_show else []) + records
    answer = parse_lookup(json.dumps({"resultCount": len(results), "results": results}).encode())
    assert answer.has_show == with_show
    assert [episode.episode_id for episode in answer.episodes] == [r["trackId"] for r in records]
    for record in records:
        episode = answer.episode(record["trackId"])
        assert episode is not None
        assert episode.duration_seconds == pytest.approx(record["trackTimeMillis"] / 1000)
        assert episode.audio_url == record["episodeUrl"].strip()
