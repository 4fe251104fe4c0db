"""Transcript formats: SRT and WebVTT checked by real parsers, JSON round trips, plain text."""

from __future__ import annotations

import html
import itertools
import json
from datetime import timedelta

import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from podscribe.storage import TRANSCRIPT_FORMATS
from podscribe.transcription.formats import (
    MAX_LINES,
    RENDERERS,
    SRT_MAX_LINE_CHARS,
    VTT_MAX_LINE_CHARS,
    Transcript,
    caption_cues,
    render,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
)
from podscribe.transcription.segments import Segment, Word


def segment_from_words(texts: list[str], start: float, step: float = 0.4) -> Segment:
    words = tuple(
        Word(round(start + i * step, 3), round(start + (i + 1) * step - 0.05, 3), text, 0.9)
        for i, text in enumerate(texts)
    )
    return Segment(words[0].start, words[-1].end, " ".join(texts), words, -0.2, 0.01)


def transcript_of(*segments: Segment, duration: float = 5000.0) -> Transcript:
    return Transcript(
        segments=segments,
        language="en",
        duration=duration,
        model="tiny.en",
        device="cpu",
        compute_type="int8",
        timings={"transcribe": 1.25},
        episode={"show": "The Loopback Hour", "title": "Episode 1"},
    )


LONG_TEXT = (
    "the quick brown fox jumps over the lazy dog while the band plays on and the crowd "
    "sings along to every single word of the chorus until midnight"
)
LONG = LONG_TEXT.split()


def test_every_stored_format_has_a_renderer():
    assert set(RENDERERS) == set(TRANSCRIPT_FORMATS)
    with pytest.raises(ValueError, match="unknown transcript format"):
        render(transcript_of(segment_from_words(["hi"], 0)), "docx")


def test_srt_parses_with_hour_timestamps_and_caption_limits():
    late = segment_from_words(LONG, start=3723.456)
    transcript = transcript_of(segment_from_words(["Hello", "there."], 0.0), late)
    text = render_srt(transcript)
    subtitles = list(srt.parse(text))
    assert [s.index for s in subtitles] == list(range(1, len(subtitles) + 1))
    assert subtitles[0].content == "Hello there."
    assert subtitles[0].start == timedelta(0)
    assert subtitles[1].start == timedelta(hours=1, minutes=2, seconds=3, milliseconds=456)
    assert "01:02:03,456 -->" in text
    assert len(subtitles) > 2  # the long segment was split into caption-sized cues
    for subtitle in subtitles:
        lines = subtitle.content.split("\n")
        assert 1 <= len(lines) <= MAX_LINES
        assert all(len(line) <= SRT_MAX_LINE_CHARS for line in lines)
        assert subtitle.end > subtitle.start
    spoken = " ".join(s.content.replace("\n", " ") for s in subtitles[1:])
    assert spoken == " ".join(LONG)
    for earlier, later in itertools.pairwise(subtitles):
        assert earlier.end <= later.start


def test_vtt_parses_escapes_markup_and_never_shows_the_arrow():
    tricky = segment_from_words(["Tom", "&", "Jerry", "<b>loud</b>", "a-->b", "x>y"], 1.0)
    text = render_vtt(transcript_of(tricky))
    assert text.startswith("WEBVTT\n\n")
    captions = webvtt.from_string(text).captions
    assert len(captions) == 1
    assert captions[0].start == "00:00:01.000"
    body = captions[0].raw_text
    assert "&amp;" in body
    assert "&lt;b&gt;loud&lt;/b&gt;" in body
    assert "-->" not in body
    assert "<" not in body and ">" not in body.replace("&gt;", "")
    assert html.unescape(body) == "Tom & Jerry <b>loud</b> a->b x>y"


def test_vtt_cues_respect_line_limits_and_times():
    transcript = transcript_of(segment_from_words(LONG, 10.0), segment_from_words(LONG, 100.0))
    captions = webvtt.from_string(render_vtt(transcript)).captions
    assert len(captions) >= 4
    for caption in captions:
        assert len(caption.lines) <= MAX_LINES
        assert all(len(line) <= VTT_MAX_LINE_CHARS for line in caption.lines)
        assert caption.end_in_seconds >= caption.start_in_seconds
    starts = [c.start_in_seconds for c in captions]
    assert starts == sorted(starts)


def test_segments_without_word_timings_are_split_by_characters():
    plain = Segment(20.0, 40.0, " ".join(LONG))
    cues = caption_cues([plain])
    assert len(cues) > 1
    assert cues[0].start == 20.0
    assert cues[-1].end == pytest.approx(40.0, abs=0.01)
    assert " ".join(" ".join(c.lines) for c in cues) == " ".join(LONG)


def test_json_round_trips_and_carries_what_made_it():
    transcript = transcript_of(segment_from_words(["One", "two."], 0.5))
    document = json.loads(render_json(transcript))
    assert document["language"] == "en"
    assert document["model"] == "tiny.en"
    assert document["device"] == "cpu"
    assert document["compute_type"] == "int8"
    assert document["timings"] == {"transcribe": 1.25}
    assert document["complete"] is True
    assert document["segments"][0]["words"][1] == {
        "start": 0.9,
        "end": 1.25,
        "word": "two.",
        "probability": 0.9,
    }
    assert Transcript.from_json(render_json(transcript)) == transcript
    with pytest.raises(ValueError, match="not a podscribe"):
        Transcript.from_dict({"segments": []})


def test_plain_text_breaks_paragraphs_at_long_pauses():
    transcript = transcript_of(
        segment_from_words(["First", "thought."], 0.0),
        segment_from_words(["Same", "breath."], 1.0),
        segment_from_words(["After", "a", "pause."], 10.0),
    )
    assert render_txt(transcript) == "First thought. Same breath.\n\nAfter a pause.\n"
    assert render_txt(transcript_of()) == "\n"
    assert render_srt(transcript_of()) == ""
    assert render_vtt(transcript_of()) == "WEBVTT\n"


word_text = (
    st.lists(
        st.sampled_from([*"abcdefghijklmnopqrstuvwxyz&<>-'.,!?é", "-->", " "]),
        min_size=1,
        max_size=30,
    )
    .map("".join)
    .filter(lambda text: text.strip())
)


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(
        st.tuples(st.lists(word_text, min_size=1, max_size=40), st.floats(0, 20_000)),
        min_size=1,
        max_size=6,
    )
)
def test_captions_always_parse_and_stay_within_limits(segments):
    transcript = transcript_of(
        *sorted(
            (segment_from_words(words, round(start, 3)) for words, start in segments),
            key=lambda s: s.start,
        )
    )
    subtitles = list(srt.parse(render_srt(transcript)))
    captions = webvtt.from_string(render_vtt(transcript)).captions
    assert subtitles and captions
    for subtitle in subtitles:
        assert "-->" not in subtitle.content
        assert subtitle.end >= subtitle.start
        lines = subtitle.content.split("\n")
        assert len(lines) <= MAX_LINES
        assert all(len(line) <= SRT_MAX_LINE_CHARS for line in lines)
    for caption in captions:
        assert "-->" not in caption.raw_text
        assert len(caption.lines) <= MAX_LINES
        assert all(len(html.unescape(line)) <= VTT_MAX_LINE_CHARS for line in caption.lines)
    # The same words in both, only laid out to different widths.
    said_srt = " ".join(s.content.replace("\n", " ") for s in subtitles)
    said_vtt = " ".join(html.unescape(c.raw_text).replace("\n", " ") for c in captions)
    assert said_srt == said_vtt
