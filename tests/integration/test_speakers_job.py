"""Speakers in a real job: espeak-ng conversations through the worker, PostgreSQL and fake GCS.

What the design guarantees, with tolerance for another CPU: every segment of a two-voice
conversation carries one of two labels, ``S1`` for whoever speaks first; the words inside each
known turn (away from its edges) carry that turn's label; segments split at turn changes, even
those without a pause. ``PODSCRIBE_DIARIZATION=off`` gives no labels at all, and a job created
with ``speakers_expected`` has exactly that many speakers.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode
from podscribe import jobs
from podscribe.db import transaction
from podscribe.jobs.worker import JobOutcome, run_job
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore
from podscribe.transcription.formats import Transcript
from tests.fakes.conversations import Conversation, make_conversation
from tests.fakes.speech import encode
from tests.integration.test_vertex_job import BUCKET, FAST_RETRY, SHOW, job_settings, read_job

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("gcs_emulator")]

EDGE_SECONDS = 0.4  # words this close to a turn change are not judged
MIN_RIGHT = 0.9  # share of judged words that must carry their turn's speaker


@pytest.fixture
def store() -> TranscriptStore:
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    return store


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Conversation, bytes]:
    folder = tmp_path_factory.mktemp("two-voices")
    conversation = make_conversation(folder, speakers=2, turns=8, seed=3)
    mp3 = encode(conversation.wav, folder / "two.mp3", codec="mp3")
    return conversation, mp3.read_bytes()


def _enqueue(engine: Engine, episode: FakeEpisode, *, speakers_expected: int | None = None) -> str:
    """Submit (with the caller's speaker hint) and claim a job, as submit and dispatch would."""
    with transaction(engine) as conn:
        job, _ = jobs.create_or_get_job(
            conn,
            collection_id=SHOW.collection_id,
            episode_id=episode.episode_id,
            source_url=f"https://podcasts.apple.com/us/podcast/x/id{SHOW.collection_id}"
            f"?i={episode.episode_id}",
            key_fingerprint="test-key",
            speakers_expected=speakers_expected,
        )
        claimed = jobs.claim_for_dispatch(conn, job.id, lease_seconds=600, max_attempts=3)
    assert claimed is not None
    return job.id


def _run(
    engine: Engine,
    database_url: str,
    store: TranscriptStore,
    work: Path,
    episode: FakeEpisode,
    *,
    speakers_expected: int | None = None,
    **overrides: object,
) -> Transcript:
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        settings = job_settings(apple, database_url, work, checkpoint_audio_seconds=30, **overrides)
        job_id = _enqueue(engine, episode, speakers_expected=speakers_expected)
        outcome = run_job(job_id, settings=settings, engine=engine, store=store, retry=FAST_RETRY)
    assert outcome is JobOutcome.SUCCEEDED
    job = read_job(engine, job_id)
    assert job.transcript_objects is not None
    return Transcript.from_json(store.get(job.transcript_objects["json"]))


def _judged_words(transcript: Transcript, conversation: Conversation) -> list[tuple[str, str]]:
    """``(true speaker, label)`` for each word well inside a known turn."""
    judged = []
    for segment in transcript.segments:
        for word in segment.words:
            middle = (word.start + word.end) / 2
            for start, end, speaker in conversation.turns:
                if start + EDGE_SECONDS <= middle <= end - EDGE_SECONDS:
                    assert segment.speaker is not None
                    judged.append((speaker, segment.speaker))
    return judged


def test_a_two_voice_conversation_is_labelled_turn_by_turn(
    engine: Engine,
    database_url: str,
    store: TranscriptStore,
    two_voices: tuple[Conversation, bytes],
    tmp_path: Path,
) -> None:
    conversation, audio = two_voices
    episode = FakeEpisode(1000000180, "Two Voices", audio=audio)

    transcript = _run(engine, database_url, store, tmp_path / "work", episode)

    assert {segment.speaker for segment in transcript.segments} == {"S1", "S2"}
    assert transcript.to_dict()["speakers"] == ["S1", "S2"]
    assert "speakers" in transcript.timings
    judged = _judged_words(transcript, conversation)
    assert len(judged) > 40
    right = sum(label == {"A": "S1", "B": "S2"}[truth] for truth, label in judged)
    assert right / len(judged) >= MIN_RIGHT, Counter(judged)
    # A segment never straddles a turn change: the labels change as often as the turns do.
    changes = sum(1 for a, b in itertools.pairwise(transcript.segments) if a.speaker != b.speaker)
    assert len(conversation.turns) - 1 - 2 <= changes <= len(conversation.turns) - 1 + 2


def test_diarization_off_leaves_the_transcript_unlabelled(
    engine: Engine,
    database_url: str,
    store: TranscriptStore,
    two_voices: tuple[Conversation, bytes],
    tmp_path: Path,
) -> None:
    _, audio = two_voices
    episode = FakeEpisode(1000000181, "Two Voices, Unlabelled", audio=audio)

    transcript = _run(engine, database_url, store, tmp_path / "work", episode, diarization="off")

    assert transcript.segments
    assert all(segment.speaker is None for segment in transcript.segments)
    assert transcript.to_dict()["speakers"] == []


def test_the_expected_speaker_count_is_honoured(
    engine: Engine, database_url: str, store: TranscriptStore, tmp_path: Path
) -> None:
    conversation = make_conversation(tmp_path, speakers=3, turns=6, seed=4)
    audio = encode(conversation.wav, tmp_path / "three.mp3", codec="mp3").read_bytes()
    episode = FakeEpisode(1000000182, "Three Voices, Two Expected", audio=audio)

    transcript = _run(engine, database_url, store, tmp_path / "work", episode, speakers_expected=2)

    assert {segment.speaker for segment in transcript.segments} == {"S1", "S2"}
