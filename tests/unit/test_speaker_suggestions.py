"""The pure parts of speaker names and share links: labels, renames, suggestions, snippets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from defusedxml import ElementTree

from podscribe.api.documents import SHARE_FORMATS, share_link_model
from podscribe.errors import InvalidSpeakerNameError, UnknownSpeakerError
from podscribe.jobs.share_links import ShareLink
from podscribe.jobs.speaker_names import (
    MAX_NAME_CHARS,
    clean_speaker_names,
    speaker_labels,
    speaker_suggestions,
)
from podscribe.transcription.segments import Segment

PODCAST_NS = "https://podcastindex.org/namespace/1.0"


def test_labels_come_in_order_of_first_appearance() -> None:
    segments = [
        Segment(0, 1, "a", speaker="S2"),
        Segment(1, 2, "b"),
        Segment(2, 3, "c", speaker="S1"),
        Segment(3, 4, "d", speaker="S2"),
        Segment(4, 5, "e", speaker="S10"),
    ]
    assert speaker_labels(segments) == ["S2", "S1", "S10"]
    assert speaker_labels([]) == []


def test_a_rename_is_trimmed_and_null_removes() -> None:
    rename = clean_speaker_names(["S1", "S2"], {"S1": "  Ann  Example ", "S2": None})
    assert dict(rename.names) == {"S1": "Ann  Example"}
    assert rename.removed == {"S2"}
    assert clean_speaker_names(["S1"], {"S1": "é" * MAX_NAME_CHARS}).names["S1"]


@pytest.mark.parametrize(
    "name", ["", "  ", "x" * (MAX_NAME_CHARS + 1), "a\tb", "a\u2028b", "\u200bAnn", "\ud800"]
)
def test_names_that_cannot_be_shown_on_one_line_are_refused(name: str) -> None:
    with pytest.raises(InvalidSpeakerNameError):
        clean_speaker_names(["S1"], {"S1": name})


def test_unknown_labels_are_refused_and_named() -> None:
    with pytest.raises(UnknownSpeakerError, match="'S3'"):
        clean_speaker_names(["S1", "S2"], {"S1": "Ann", "S3": "Cy"})
    with pytest.raises(UnknownSpeakerError, match="labels: none"):
        clean_speaker_names([], {"S1": "Ann"})


@pytest.mark.parametrize(
    ("episode", "expected"),
    [
        (None, []),
        ({}, []),
        ({"persons": "Ann"}, []),
        ({"persons": [None, 3, {"role": "host"}, {"name": 7}]}, []),
        (
            {
                "persons": [
                    {"name": "Ann  Example", "role": "Host"},
                    {"name": "Bob"},  # the namespace's default role is host
                    {"name": "Cy", "role": "guest"},
                    {"name": "Dee", "role": "producer"},
                    {"name": "Ann Example", "role": "host"},
                    {"name": "   ", "role": "guest"},
                ]
            },
            [
                {"name": "Ann Example", "role": "host"},
                {"name": "Bob", "role": "host"},
                {"name": "Cy", "role": "guest"},
            ],
        ),
    ],
)
def test_suggestions_are_the_feeds_hosts_and_guests(
    episode: dict[str, Any] | None, expected: list[dict[str, str]]
) -> None:
    assert speaker_suggestions(episode) == expected


def test_suggestions_are_bounded() -> None:
    persons = [{"name": f"Guest {n} " + "x" * 500, "role": "guest"} for n in range(100)]
    suggestions = speaker_suggestions({"persons": persons})
    assert len(suggestions) == 20
    assert all(len(item["name"]) <= MAX_NAME_CHARS for item in suggestions)


def test_the_snippet_is_one_podcast_transcript_element_per_format() -> None:
    link = ShareLink(
        id="0b7c6f2e-3f1a-4c55-9d7e-1a2b3c4d5e6f",
        job_id="6f1d0f0e-5b1e-4a8e-9a57-0d2b4a8f3c11",
        token="A" * 43,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
    )
    model = share_link_model(link, 'https://api.example/a&b"c', "de")
    item = ElementTree.fromstring(
        f'<item xmlns:podcast="{PODCAST_NS}">{model.podcast_transcript}</item>'
    )
    tags = list(item)
    assert [tag.tag for tag in tags] == [f"{{{PODCAST_NS}}}transcript"] * len(SHARE_FORMATS)
    assert [tag.get("url") for tag in tags] == [
        f'https://api.example/a&b"c/t/{"A" * 43}.{ext}' for ext in SHARE_FORMATS
    ]
    assert [tag.get("type") for tag in tags] == [kind for _, kind in SHARE_FORMATS.values()]
    assert {tag.get("language") for tag in tags} == {"de"}
    assert [tag.get("rel") for tag in tags] == ["captions", "captions", None, None, None]
    assert model.urls["json"].endswith(".json")
