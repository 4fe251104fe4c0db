"""The publisher's transcripts (VTT, SRT, Podcasting 2.0 JSON and HTML) read into segments.

Each format with its speakers, then what a hostile host could send: deep nesting, 100,000
cues, absurd timestamps, invalid UTF-8, scripts in HTML; and what real files carry (BOMs,
CRLF line ends, word-by-word cues).
"""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import replace

import pytest

from podscribe.errors import TooLargeError, UnsafeDocumentError
from podscribe.jobs.publisher import best_transcript
from podscribe.podcasts import Episode
from podscribe.podcasts.podcast_namespace import PublisherTranscriptRef
from podscribe.transcription.publisher import (
    MAX_CUES,
    parse_publisher_transcript,
    timestamp_limit,
    transcript_kind,
)
from podscribe.transcription.segments import Segment

LIMIT = 3600.0

VTT = b"""WEBVTT - a show

NOTE the publisher's own words

STYLE
::cue { color: white }

intro-1
00:00:00.000 --> 00:00:02.500 align:start
<v Ann Lee>Welcome back to the show,</v>

00:00:02.500 --> 00:00:04.000
<v Ann Lee>everyone. It&apos;s <i>great</i> &amp; good.</v>

00:04.500 --> 00:06.000
<v.loud Bob>Thanks, Ann! <00:00:05.000>Glad to be here.
"""

SRT = b"""1
00:00:01,000 --> 00:00:03,000
Ann Lee: Hello <i>there</i>, friends.

2
00:00:03,000 --> 00:00:05,000
It is a long one today.

3
00:00:05,500 --> 00:00:07,000
Bob: At 10:30 we start.
"""

PODCAST_JSON = {
    "version": "1.0.0",
    "segments": [
        {"speaker": "Ann", "startTime": 0.5, "endTime": 1.25, "body": "Hi"},
        {"speaker": "Ann", "startTime": 1.25, "endTime": 2.0, "body": "folks."},
        {"speaker": "Bob", "startTime": 2.0, "endTime": 3.0, "body": "Hello <b>Ann</b>."},
        {"startTime": 3.5, "endTime": 4.0, "body": "Nobody in particular."},
        {"startTime": "5", "endTime": 6, "body": "a string time: skipped"},
    ],
}

HTML = b"""<!doctype html><html><head><title>Transcript</title>
<script>document.write("injected")</script><style>p { color: red }</style></head><body>
<cite>Kevin:</cite>
<time>0:00</time>
<p>Welcome <script>alert("x")</script>to the show.</p>
<cite>Amy:</cite>
<time>00:00:05</time>
<p>Thanks &amp; hello.</p>
<p>Still Amy.</p>
</body></html>"""


def parse(content: bytes, kind: str, limit: float = LIMIT) -> tuple[Segment, ...]:
    return parse_publisher_transcript(content, kind, max_seconds=limit)


def spoken(segments: tuple[Segment, ...]) -> list[tuple[float, float, str | None, str]]:
    return [(s.start, s.end, s.speaker, s.text) for s in segments]


def test_vtt_voice_spans_name_the_speakers_and_cues_join_into_sentences() -> None:
    assert spoken(parse(VTT, "vtt")) == [
        (0.0, 4.0, "Ann Lee", "Welcome back to the show, everyone. It's great & good."),
        (4.5, 6.0, "Bob", "Thanks, Ann! Glad to be here."),
    ]


def test_srt_leading_names_stand_until_the_next_one() -> None:
    assert spoken(parse(SRT, "srt")) == [
        (1.0, 5.0, "Ann Lee", "Hello there, friends. It is a long one today."),
        (5.5, 7.0, "Bob", "At 10:30 we start."),
    ]


def test_podcasting_json_segments_keep_their_speakers() -> None:
    assert spoken(parse(json.dumps(PODCAST_JSON).encode(), "json")) == [
        (0.5, 2.0, "Ann", "Hi folks."),
        (2.0, 3.0, "Bob", "Hello Ann."),
        (3.5, 4.0, None, "Nobody in particular."),
    ]


def test_html_cites_and_times_make_segments_and_scripts_are_never_text() -> None:
    segments = parse(HTML, "html")
    assert spoken(segments)[0] == (0.0, 5.0, "Kevin", "Welcome to the show.")
    assert segments[1].speaker == "Amy"
    assert segments[1].text == "Thanks & hello. Still Amy."
    assert all("alert" not in s.text and "injected" not in s.text for s in segments)


@pytest.mark.parametrize(
    ("declared", "content", "kind"),
    [
        ("application/octet-stream", VTT, "vtt"),
        ("text/plain", SRT, "srt"),
        ("text/vtt", b'{"segments": []}', "json"),
        ("application/json", HTML, "html"),
        ("application/srt", b"no hint at all", "srt"),
        ("text/plain", b"no hint at all", None),
    ],
)
def test_the_first_bytes_decide_the_parser_before_the_declared_type(
    declared: str, content: bytes, kind: str | None
) -> None:
    assert transcript_kind(declared, content) == kind


def test_a_bom_and_crlf_line_ends_read_the_same() -> None:
    crlf = b"\xef\xbb\xbf" + VTT.replace(b"\n", b"\r\n")
    assert transcript_kind("text/vtt", crlf) == "vtt"
    assert parse(crlf, "vtt") == parse(VTT, "vtt")
    assert parse(b"\xef\xbb\xbf" + SRT.replace(b"\n", b"\r\n"), "srt") == parse(SRT, "srt")
    utf16 = VTT.decode().encode("utf-16")
    assert parse(utf16, "vtt") == parse(VTT, "vtt")


def test_overlapping_and_unsorted_cues_come_out_sorted_and_apart() -> None:
    cues = b"WEBVTT\n\n00:00:05.000 --> 00:00:09.000\n<v B>Second.\n\n" + (
        b"00:00:00.000 --> 00:00:06.000\n<v A>First.\n"
    )
    first, second = parse(cues, "vtt")
    assert (first.speaker, second.speaker) == ("A", "B")
    assert first.end <= second.start


def test_word_by_word_cues_join_into_sentence_sized_segments() -> None:
    said = "This is one short sentence spoken slowly. And then another one follows it."
    words = said.split()
    blocks = [f"00:00:{n:02d}.000 --> 00:00:{n:02d}.900\n{word}" for n, word in enumerate(words)]
    segments = parse(("WEBVTT\n\n" + "\n\n".join(blocks)).encode(), "vtt")
    assert [s.text for s in segments] == [
        "This is one short sentence spoken slowly.",
        "And then another one follows it.",
    ]


def test_json_nested_too_deep_is_refused() -> None:
    with pytest.raises(UnsafeDocumentError, match="nested too deeply"):
        parse(b"[" * 100_000 + b"]" * 100_000, "json")


def test_json_that_is_not_a_transcript_is_refused() -> None:
    with pytest.raises(UnsafeDocumentError):
        parse(b'{"version": "1.0.0"}', "json")
    with pytest.raises(UnsafeDocumentError):
        parse(b"<html>not json</html>", "json")


@pytest.mark.parametrize("kind", ["vtt", "srt", "json", "html"])
def test_a_hundred_thousand_cues_are_refused_within_bounded_memory(kind: str) -> None:
    count = 100_000
    if kind == "json":
        body = json.dumps(
            {"segments": [{"startTime": 1, "endTime": 2, "body": "x"}] * count}
        ).encode()
    elif kind == "html":
        body = b"<time>0:01</time><p>x</p>" * count
    else:
        separator = b"." if kind == "vtt" else b","
        cue = b"00:00:01" + separator + b"000 --> 00:00:02" + separator + b"000\nx\n\n"
        body = (b"WEBVTT\n\n" if kind == "vtt" else b"") + cue * count
    tracemalloc.start()
    try:
        with pytest.raises(TooLargeError, match=str(MAX_CUES)):
            parse(body, kind)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20  # a generous cap: the file is a few MB


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"WEBVTT\n\n99999:00:00.000 --> 99999:00:01.000\nlate\n", "vtt"),
        (b"1\n00:00:01,000 --> 02:00:00,000\nfar past the audio\n", "srt"),
        (b'{"segments": [{"startTime": 1e300, "endTime": 1e301, "body": "x"}]}', "json"),
        (b'{"segments": [{"startTime": -5, "endTime": 1, "body": "x"}]}', "json"),
        (b"<time>99:00:00</time><p>late</p>", "html"),
    ],
    ids=["vtt", "srt", "json-huge", "json-negative", "html"],
)
def test_timestamps_past_the_audio_are_refused(content: bytes, kind: str) -> None:
    with pytest.raises(UnsafeDocumentError, match="past the audio"):
        parse(content, kind, limit=timestamp_limit(1800.0, 6 * 3600))


def test_the_limit_is_the_declared_length_with_slack_else_the_longest_episode() -> None:
    assert timestamp_limit(1000.0, 21600) == pytest.approx(1110.0)
    assert timestamp_limit(None, 21600) == 21600.0


@pytest.mark.parametrize(
    "content",
    [
        b"WEBVTT\n\n00:00:61.000 --> 00:00:62.000\nbad seconds\n",
        b"WEBVTT\n\nabc --> def\nno times\n",
    ],
)
def test_unreadable_timings_are_refused(content: bytes) -> None:
    with pytest.raises(UnsafeDocumentError, match="timing"):
        parse(content, "vtt")


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(UnsafeDocumentError, match="utf-8"):
        parse(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nbroken \xc3\x28 text\n", "vtt")
    with pytest.raises(UnsafeDocumentError, match="utf-8"):
        parse(SRT + b"\xed\xa0\x80", "srt")


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"WEBVTT\n\nNOTE nothing timed\n", "vtt"),
        (b"just words, no timings", "srt"),
        (b"<p>no times at all</p>", "html"),
        (b"no header\n\n00:00:01.000 --> 00:00:02.000\nx\n", "vtt"),
    ],
)
def test_a_transcript_without_timed_text_is_refused(content: bytes, kind: str) -> None:
    with pytest.raises(UnsafeDocumentError):
        parse(content, kind)


def test_a_reference_of_thousands_of_digits_reads_as_a_replacement_character() -> None:
    content = b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nodd &#" + b"9" * 5000 + b"; text\n"
    [segment] = parse(content, "vtt")
    assert segment.text == "odd \ufffd text"
    html = b"<time>0:01</time><p>odd &#" + b"9" * 5000 + b";</p>"
    assert parse(html, "html")[0].text == "odd \ufffd"


def test_the_best_type_offered_is_the_one_fetched() -> None:
    refs = tuple(
        PublisherTranscriptRef(f"https://cdn.example.com/t.{ext}", kind)
        for ext, kind in [
            ("txt", "text/plain"),
            ("html", "text/html"),
            ("srt", "application/x-subrip"),
            ("vtt", "text/vtt"),
            ("json", "application/json"),
        ]
    )
    episode = Episode(1, 2, None, "S", "T", "https://cdn.example.com/a.mp3", None, None, None)
    assert best_transcript(replace(episode, transcripts=refs)) == refs[-1]
    assert best_transcript(replace(episode, transcripts=refs[:3])) == refs[2]
    assert best_transcript(replace(episode, transcripts=refs[:1])) is None
