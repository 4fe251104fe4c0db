"""The job on real human speech: a conversation of four real speakers with pauses, end to end.

Built from the clips in ``../shared/data/realspeech/`` (EDACC conversational speech from two
speakers, LibriSpeech readers 1988 and 1089), turns interleaved, pauses of 0.4-2.5 s, speakers
at levels 8 dB apart. On this episode the batched pipeline decoding each chunk once (what the job
did before it decoded until covered) lost four of the nine utterances (WER 0.36, coverage 0.56,
measured with tiny.en int8); sequential faster-whisper lost none. The job must lose none either,
and its WER must stay within the accuracy benchmark's bound of sequential decoding's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from benchmarks.accuracy import WER_GOAL
from local_emulators.fixtures import FakeApplePodcasts, FakeEpisode
from podscribe.jobs.worker import JobOutcome, run_job
from podscribe.settings import load_settings
from podscribe.storage import TranscriptStore
from podscribe.transcription.formats import Transcript
from tests.fakes.realspeech import Episode, build_episode, load_utterances, score, write_mp3
from tests.integration.test_vertex_job import (
    BUCKET,
    FAST_RETRY,
    SHOW,
    enqueue,
    job_settings,
    read_job,
)

pytestmark = pytest.mark.slow

TURNS = (
    "EDACC-C02-000000000",
    "1988-24833-0000",
    "1988-24833-0001",
    "EDACC-C02-000000001",
    "1089-134686-0000",
    "1988-24833-0002",
    "1089-134686-0001",
    "1988-24833-0003",
    "EDACC-C02-000000002",
)
# A short episode has few words: a couple of words either way on another CPU must not fail it.
SLACK_WORDS = 3


@pytest.fixture(scope="module")
def conversation() -> Episode:
    by_id = {utterance.id: utterance for utterance in load_utterances()}
    return build_episode(
        "conversation", [by_id[i] for i in TURNS], seed=3, pauses=(0.4, 2.5), gains_db=(-8, 4)
    )


@pytest.fixture(scope="module")
def sequential_errors(conversation: Episode) -> int:
    """Sequential faster-whisper (its defaults, beam 5) on the same audio: the bound's base."""
    from podscribe.transcription.model import EngineConfig, load_model

    config = EngineConfig.from_settings(load_settings(env="test"))
    model = load_model(config.model, config.device, config.compute_type, config.cpu_threads)
    segments, _ = model.transcribe(conversation.samples, beam_size=5)
    result = score(conversation.references, " ".join(s.text for s in segments))
    # Not asserted: sequential decoding is not perfect either (here it lost the opening
    # utterance once); the bound is relative to what it got.
    return result.errors


@pytest.mark.usefixtures("gcs_emulator")
def test_the_job_drops_no_utterance_of_real_speech_and_stays_within_the_bound(
    engine: Engine,
    database_url: str,
    conversation: Episode,
    sequential_errors: int,
    tmp_path: Path,
):
    store = TranscriptStore(load_settings(env="test", bucket=BUCKET))
    store.ensure_bucket()
    audio = write_mp3(conversation, tmp_path).read_bytes()
    episode = FakeEpisode(1000000090, "Please Call Stella", audio=audio)
    with FakeApplePodcasts(SHOW, [episode]) as apple:
        # The production shape: batches of 8 chunks, 300-second windows.
        settings = job_settings(
            apple,
            database_url,
            tmp_path / "work",
            whisper_batch_size=8,
            checkpoint_audio_seconds=300,
        )
        job_id = enqueue(engine, episode)
        outcome = run_job(job_id, settings=settings, engine=engine, store=store, retry=FAST_RETRY)
    assert outcome is JobOutcome.SUCCEEDED
    job = read_job(engine, job_id)
    assert job.transcript_objects is not None
    transcript = Transcript.from_json(store.get(job.transcript_objects["json"]))
    heard = score(conversation.references, transcript.text, ids=list(TURNS))
    assert heard.missed == (), heard
    assert heard.errors <= WER_GOAL * sequential_errors + SLACK_WORDS, (heard, sequential_errors)
    # Every format carries the same words: the captions too.
    text = store.get(job.transcript_objects["txt"]).decode()
    assert score(conversation.references, text).missed == ()
    segments = json.loads(store.get(job.transcript_objects["json"]))["segments"]
    starts = [segment["start"] for segment in segments]
    assert starts == sorted(starts) and starts[-1] < conversation.seconds
