"""What transcription produces: segments of speech and their words.

Plain data, apart from the engine (``podscribe.transcription.engine``, which needs numpy and
faster-whisper), so the transcript formats and the submit function can use them without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Word:
    """A word with its timing (seconds from the start of the episode) and confidence."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of transcribed speech.

    Attributes:
        start: seconds from the start of the episode.
        end: seconds from the start of the episode.
        text: what was said, stripped.
        words: word timings when word timestamps are on; empty otherwise.
        avg_logprob: the decoder's average log probability.
        no_speech_prob: the model's belief that the stretch held no speech.
        speaker: who spoke it: a diarization label (``S1``, ``S2``, ...) or, for a
            publisher's transcript, the name it gives; None when unknown. A segment has one
            speaker: diarization splits segments where the speaker changes.
    """

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    speaker: str | None = None

    def shifted(self, seconds: float) -> Segment:
        """The same segment, ``seconds`` later."""
        return replace(
            self,
            start=round(self.start + seconds, 3),
            end=round(self.end + seconds, 3),
            words=tuple(
                replace(w, start=round(w.start + seconds, 3), end=round(w.end + seconds, 3))
                for w in self.words
            ),
        )
