"""Podcast formats with speakers: each format checked by a parser (srt, webvtt-py, a JSON
Schema written from the Podcasting 2.0 spec, html.parser), names applied everywhere, speakers
off everywhere, caption sizes honoured, hostile names and text escaped."""

from __future__ import annotations

import html
import itertools
import json
import re
from html.parser import HTMLParser

import jsonschema
import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from podscribe.transcription.formats import (
    RENDERERS,
    RenderOptions,
    Transcript,
    caption_cues,
    render,
    render_html,
    render_json,
    render_podcast_json,
    render_srt,
    render_txt,
    render_vtt,
)
from podscribe.transcription.segments import Segment, Word

# The Podcasting 2.0 JSON transcript (podcast-namespace, transcripts.md): a version and
# segments of speaker (optional), startTime, endTime (optional) and body.
PODCAST_JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "segments"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0.0"},
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["startTime", "body"],
                "additionalProperties": False,
                "properties": {
                    "speaker": {"type": "string", "minLength": 1},
                    "startTime": {"type": "number", "minimum": 0},
                    "endTime": {"type": "number", "minimum": 0},
                    "body": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}
PODCAST_JSON = jsonschema.Draft202012Validator(PODCAST_JSON_SCHEMA)
HOSTILE_NAME = 'Dr. <b>"Evil"</b> & co\n--> x'
HOSTILE_TEXT = "</p><script>alert(1)</script> & <img src=x onerror=alert(2)> a-->b"
NAMES = {"S1": "Ann Lee", "S2": "Bob"}


def spoken(texts: str, start: float, speaker: str | None, step: float = 0.4) -> Segment:
    words = tuple(
        Word(round(start + i * step, 3), round(start + (i + 1) * step - 0.05, 3), text, 0.9)
        for i, text in enumerate(texts.split())
    )
    return Segment(words[0].start, words[-1].end, texts, words, speaker=speaker)


def transcript_of(*segments: Segment) -> Transcript:
    return Transcript(
        segments=segments,
        language="en",
        duration=5000.0,
        model="tiny.en",
        device="cpu",
        compute_type="int8",
        episode={"show": "The Loopback Hour", "title": "Episode <1> & more"},
    )


CONVERSATION = transcript_of(
    spoken("welcome to the show where we talk about apples all day long", 0.0, "S1"),
    spoken("and about pears too because pears matter", 8.0, "S1"),
    spoken("thanks for having me here bananas are my favourite fruit by far", 13.0, "S2"),
    spoken("really now", 18.0, "S1"),
    spoken("yes really", 19.0, "S3"),
    spoken("an unknown voice speaks at last", 21.0, None),
)
TURNS = ["Ann Lee", "Bob", "Ann Lee", "S3"]  # known speakers in order, where the speaker changes


def test_every_format_applies_speaker_names() -> None:
    options = RenderOptions(speaker_names=NAMES)
    for fmt in RENDERERS:
        text = render(CONVERSATION, fmt, options)
        assert "Ann Lee" in text and "Bob" in text, fmt
        assert "S3" in text, fmt  # a label without a name renders as itself
    # The record keeps its labels (what it is re-read by) and shows the names beside them.
    document = json.loads(render_json(CONVERSATION, options))
    assert [(s["speaker"], s["speaker_name"]) for s in document["segments"]] == [
        ("S1", "Ann Lee"),
        ("S1", "Ann Lee"),
        ("S2", "Bob"),
        ("S1", "Ann Lee"),
        ("S3", "S3"),
        (None, None),
    ]
    assert document["speakers"] == ["S1", "S2", "S3"]
    assert Transcript.from_json(render_json(CONVERSATION, options)) == CONVERSATION


def test_speakers_off_leaves_every_speaker_out_of_every_format() -> None:
    options = RenderOptions(speaker_names=NAMES, speakers=False)
    for fmt in RENDERERS:
        text = render(CONVERSATION, fmt, options)
        for trace in ("Ann", "Bob", "S1", "S2", "S3", "<v", "<cite"):
            assert trace not in text, (fmt, trace)
    document = json.loads(render_json(CONVERSATION, options))
    assert document["speakers"] == []
    assert all(s["speaker"] is None and s["speaker_name"] is None for s in document["segments"])
    assert all(
        "speaker" not in s
        for s in json.loads(render_podcast_json(CONVERSATION, options))["segments"]
    )


def test_srt_names_each_turn_once_within_32_by_2() -> None:
    subtitles = list(srt.parse(render_srt(CONVERSATION, RenderOptions(speaker_names=NAMES))))
    prefixes = [m.group(1) for s in subtitles if (m := re.match(r"([A-Z][\w ]*): ", s.content))]
    assert prefixes == TURNS
    assert subtitles[0].content.startswith("Ann Lee: welcome")
    for subtitle in subtitles:
        lines = subtitle.content.split("\n")
        assert 1 <= len(lines) <= 2 and all(len(line) <= 32 for line in lines)
        # A cue never spans a speaker change.
        assert not ("apples" in subtitle.content and "bananas" in subtitle.content)
    for earlier, later in itertools.pairwise(subtitles):
        assert earlier.start < earlier.end <= later.start
    said = " ".join(s.content.replace("\n", " ") for s in subtitles)
    assert said.startswith(
        "Ann Lee: welcome to the show where we talk about apples all day long and"
    )
    assert "Bob: thanks for having me" in said and "Ann Lee: really now S3: yes really" in said


def test_srt_and_vtt_honour_the_callers_sizes() -> None:
    narrow = RenderOptions(speaker_names=NAMES, max_line_chars=16, max_lines=1)
    for subtitle in srt.parse(render_srt(CONVERSATION, narrow)):
        assert "\n" not in subtitle.content and len(subtitle.content) <= 16
    wide = RenderOptions(max_line_chars=20, max_lines=4)
    captions = webvtt.from_string(render_vtt(CONVERSATION, wide)).captions
    assert any(len(c.lines) > 2 for c in captions)
    assert all(
        len(c.lines) <= 4 and all(len(line) <= 20 for line in c.text.split("\n")) for c in captions
    )


def test_a_name_too_wide_for_the_line_is_shortened_in_srt() -> None:
    options = RenderOptions(
        speaker_names={"S1": "Maximilian Alexander von Habsburg"}, max_line_chars=16, max_lines=1
    )
    transcript = transcript_of(spoken("supercalifragilistic words", 0.0, "S1"))
    first, *rest = srt.parse(render_srt(transcript, options))
    assert first.content == "Maximilian A\u2026: s"  # the word is cut to share the one line
    assert all(len(s.content) <= 16 for s in [first, *rest])
    assert "".join(s.content for s in rest).replace(" ", "") == "upercalifragilisticwords"


def test_vtt_voice_spans_on_every_cue_with_a_known_speaker() -> None:
    text = render_vtt(CONVERSATION, RenderOptions(speaker_names=NAMES))
    captions = webvtt.from_string(text).captions
    voices = [c.voice for c in captions]
    assert voices[0] == "Ann Lee" and "Bob" in voices and voices[-1] is None
    assert [name for name, _ in itertools.groupby(v for v in voices if v)] == TURNS
    for caption in captions:
        assert all(len(line) <= 65 for line in caption.text.split("\n"))
        assert len(caption.lines) <= 2


def test_vtt_escapes_hostile_names_and_text() -> None:
    transcript = transcript_of(spoken(HOSTILE_TEXT, 1.0, "S1"))
    text = render_vtt(transcript, RenderOptions(speaker_names={"S1": HOSTILE_NAME}))
    captions = webvtt.from_string(text).captions
    assert captions and all(c.voice is not None for c in captions)
    voice = captions[0].voice
    assert voice is not None and "<" not in voice and ">" not in voice
    assert html.unescape(voice) == 'Dr. <b>"Evil"</b> & co -> x'
    for caption in captions:
        assert "-->" not in caption.raw_text
        visible = caption.raw_text.split(">", 1)[1]  # after the voice span
        assert "<" not in visible and ">" not in visible
    said = " ".join(html.unescape(c.text).replace("\n", " ") for c in captions)
    assert said == HOSTILE_TEXT.replace("-->", "->")


class HtmlTranscript(HTMLParser):
    """The tags of a document, and the body as (tag, text) blocks of cite/time/p."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.blocks: list[tuple[str, str]] = []
        self.datetimes: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in {"cite", "time", "p"}:
            self._open = tag
            self.blocks.append((tag, ""))
        if tag == "time":
            self.datetimes.append(dict(attrs)["datetime"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            tag, text = self.blocks[-1]
            self.blocks[-1] = (tag, text + data)


def parse_html(text: str) -> HtmlTranscript:
    parser = HtmlTranscript()
    parser.feed(text)
    parser.close()
    return parser


def test_html_is_the_podcasting_transcript_shape() -> None:
    parsed = parse_html(render_html(CONVERSATION, RenderOptions(speaker_names=NAMES)))
    assert parsed.tags[:5] == ["html", "head", "meta", "title", "body"]
    assert parsed.blocks == [
        ("cite", "Ann Lee:"),
        ("time", "0:00"),
        ("p", "welcome to the show where we talk about apples all day long"),
        ("cite", "Ann Lee:"),  # a long pause: a new paragraph, the speaker named again
        ("time", "0:08"),
        ("p", "and about pears too because pears matter"),
        ("cite", "Bob:"),
        ("time", "0:13"),
        ("p", "thanks for having me here bananas are my favourite fruit by far"),
        ("cite", "Ann Lee:"),
        ("time", "0:18"),
        ("p", "really now"),
        ("cite", "S3:"),
        ("time", "0:19"),
        ("p", "yes really"),
        ("time", "0:21"),
        ("p", "an unknown voice speaks at last"),
    ]
    assert parsed.datetimes[1] == "PT8.000S"
    late = parse_html(render_html(transcript_of(spoken("an hour in", 3725.0, None))))
    assert late.blocks == [("time", "1:02:05"), ("p", "an hour in")]


def test_html_cannot_be_injected_through_names_or_text() -> None:
    transcript = transcript_of(spoken(HOSTILE_TEXT, 1.0, "S1"))
    document = render_html(transcript, RenderOptions(speaker_names={"S1": HOSTILE_NAME}))
    parsed = parse_html(document)
    assert set(parsed.tags) == {"html", "head", "meta", "title", "body", "cite", "time", "p"}
    assert parsed.blocks == [
        ("cite", 'Dr. <b>"Evil"</b> & co --> x:'),
        ("time", "0:01"),
        ("p", HOSTILE_TEXT),
    ]
    assert "<title>Transcript: Episode &lt;1&gt; &amp; more</title>" in document


def test_plain_text_names_the_speaker_where_it_changes() -> None:
    assert render_txt(CONVERSATION, RenderOptions(speaker_names=NAMES)) == (
        "Ann Lee: welcome to the show where we talk about apples all day long\n\n"
        "and about pears too because pears matter\n\n"
        "Bob: thanks for having me here bananas are my favourite fruit by far\n\n"
        "Ann Lee: really now\n\n"
        "S3: yes really\n\n"
        "an unknown voice speaks at last\n"
    )


def test_podcast_json_is_word_by_word_when_words_are_timed() -> None:
    phrase = Segment(30.0, 33.5, "no word timings here", speaker="S2")
    transcript = transcript_of(*CONVERSATION.segments, phrase)
    document = json.loads(render_podcast_json(transcript, RenderOptions(speaker_names=NAMES)))
    PODCAST_JSON.validate(document)
    segments = document["segments"]
    assert segments[0] == {
        "speaker": "Ann Lee",
        "startTime": 0.0,
        "endTime": 0.35,
        "body": "welcome",
    }
    assert len(segments) == sum(len(s.words) for s in CONVERSATION.segments) + 1
    assert segments[-1] == {
        "speaker": "Bob",
        "startTime": 30.0,
        "endTime": 33.5,
        "body": "no word timings here",
    }
    assert "speaker" not in segments[-2]  # the unknown voice
    assert [s["startTime"] for s in segments] == sorted(s["startTime"] for s in segments)
    assert json.loads(render_podcast_json(transcript_of())) == {"version": "1.0.0", "segments": []}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_line_chars": 15}, "max_line_chars must be a whole number from 16 to 200"),
        ({"max_line_chars": 201}, "max_line_chars"),
        ({"max_line_chars": True}, "max_line_chars"),
        ({"max_lines": 0}, "max_lines must be a whole number from 1 to 4"),
        ({"max_lines": 5}, "max_lines"),
        ({"max_lines": 2.0}, "max_lines"),
        ({"speaker_names": {"S1": " \n "}}, r"speaker_names\['S1'\] must be 1 to 100"),
        ({"speaker_names": {"S1": "x" * 101}}, "speaker_names"),
        ({"speaker_names": {"S1": 7}}, "speaker_names must map"),
    ],
)
def test_options_out_of_bounds_are_refused_with_the_field_named(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RenderOptions(**options)  # type: ignore[arg-type]


def test_options_keep_a_clean_copy_of_the_names() -> None:
    names = {"S1": "  Ann\n\tLee\x00 "}
    options = RenderOptions(speaker_names=names)
    names["S1"] = "changed"
    assert options.speaker("S1") == "Ann Lee"
    assert options.speaker("S9") == "S9" and options.speaker(None) is None
    assert RenderOptions(max_line_chars=16, max_lines=4).line_chars(32) == 16


# Random conversations: words with markup, ampersands, arrows and accents; speakers from a
# few labels (or none); names that try to break out of every format.
word_text = (
    st.lists(
        st.sampled_from([*"abcdefghijklmnopqrstuvwxyz&<>-'.,!?é", "-->", " ", "\n"]),
        min_size=1,
        max_size=30,
    )
    .map("".join)
    .filter(lambda text: text.strip())
)
speaker_labels = st.sampled_from([None, "S1", "S2", "S3"])
segment_lists = st.lists(
    st.tuples(st.lists(word_text, min_size=1, max_size=25), st.floats(0, 20_000), speaker_labels),
    min_size=1,
    max_size=6,
)


def without_arrows(text: str) -> str:
    return re.sub(r"-{2,}>", "->", text)


def conversation(segments: list[tuple[list[str], float, str | None]]) -> Transcript:
    built = []
    for words, start, speaker in sorted(segments, key=lambda item: item[1]):
        timed = tuple(
            Word(round(start + i * 0.4, 3), round(start + i * 0.4 + 0.35, 3), text, 0.9)
            for i, text in enumerate(words)
        )
        built.append(
            Segment(timed[0].start, timed[-1].end, " ".join(words), timed, speaker=speaker)
        )
    return transcript_of(*built)


@settings(max_examples=60, deadline=None)
@given(
    segments=segment_lists,
    max_chars=st.integers(16, 80),
    max_lines=st.integers(1, 4),
    speakers=st.booleans(),
)
def test_srt_names_turns_exactly_and_stays_within_the_sizes(
    segments: list[tuple[list[str], float, str | None]],
    max_chars: int,
    max_lines: int,
    speakers: bool,
) -> None:
    transcript = conversation(segments)
    options = RenderOptions(
        speaker_names={"S1": "Ann", "S2": "Bob"},
        speakers=speakers,
        max_line_chars=max_chars,
        max_lines=max_lines,
    )
    subtitles = list(srt.parse(render_srt(transcript, options)))
    assert subtitles
    for subtitle in subtitles:
        lines = subtitle.content.split("\n")
        assert 1 <= len(lines) <= max_lines and all(0 < len(line) <= max_chars for line in lines)
        assert "-->" not in subtitle.content
    for earlier, later in itertools.pairwise(subtitles):
        assert earlier.start < earlier.end <= later.start
    # Names are capitalised and words are not: a prefix is unmistakable.
    prefixes = [m.group(1) for s in subtitles if (m := re.match(r"(Ann|Bob|S3):", s.content))]
    expected = [options.speaker(s.speaker) for s in transcript.segments]
    turns = [name for name, _ in itertools.groupby(expected)]
    assert prefixes == [name for name in turns if name is not None]
    assert all(re.search(r"(Ann|Bob|S3):", s.content[1:]) is None for s in subtitles)
    cues = caption_cues(
        transcript.segments, max_chars=max_chars, max_lines=max_lines, speaker_of=options.speaker
    )
    said = "".join("".join(cue.lines) for cue in cues).replace(" ", "")
    words = [without_arrows(w.text) for s in transcript.segments for w in s.words]
    assert said == "".join("".join(words).split())


hostile_names = (
    st.lists(
        st.sampled_from([*"aZ <>&\"'\n\t/:;=", "-->", "</p>", "<script>", "\u00e9"]),
        min_size=1,
        max_size=12,
    )
    .map("".join)
    .filter(lambda name: name.strip())
)


@settings(max_examples=60, deadline=None)
@given(
    segments=segment_lists,
    names=st.dictionaries(st.sampled_from(["S1", "S2", "S3"]), hostile_names, max_size=3),
    max_chars=st.integers(16, 120),
    max_lines=st.integers(1, 4),
    speakers=st.booleans(),
)
def test_every_format_parses_whatever_the_names_and_words(
    segments: list[tuple[list[str], float, str | None]],
    names: dict[str, str],
    max_chars: int,
    max_lines: int,
    speakers: bool,
) -> None:
    transcript = conversation(segments)
    options = RenderOptions(
        speaker_names=names, speakers=speakers, max_line_chars=max_chars, max_lines=max_lines
    )
    shown = {name for s in transcript.segments if (name := options.speaker(s.speaker)) is not None}

    captions = webvtt.from_string(render_vtt(transcript, options)).captions
    assert captions
    for caption in captions:
        assert len(caption.lines) <= max_lines and "-->" not in caption.raw_text
        assert all(len(html.unescape(line)) <= max_chars for line in caption.text.split("\n"))
        if caption.voice is not None:
            assert "\n" not in caption.voice and ">" not in caption.voice
            assert html.unescape(caption.voice) in {without_arrows(name) for name in shown}
    assert speakers or all(caption.voice is None for caption in captions)

    document = json.loads(render_podcast_json(transcript, options))
    PODCAST_JSON.validate(document)
    for item in document["segments"]:
        assert item["endTime"] >= item["startTime"]
        assert item.get("speaker") is None or item["speaker"] in shown

    parsed = parse_html(render_html(transcript, options))
    assert set(parsed.tags) <= {"html", "head", "meta", "title", "body", "cite", "time", "p"}
    paragraphs = [text for tag, text in parsed.blocks if tag == "p"]
    assert " ".join(paragraphs).split() == transcript.text.split()
    cites = {text.removesuffix(":") for tag, text in parsed.blocks if tag == "cite"}
    assert cites <= shown

    text = render_txt(transcript, options)
    assert text.endswith("\n") and "\n\n\n" not in text
    assert json.loads(render_json(transcript, options))["segments"]
