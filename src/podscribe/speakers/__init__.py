"""Who spoke when: offline diarization with resemblyzer's GE2E voice encoder, in numpy.

No torch, librosa or scikit-learn at run time: the encoder's weights ship as ``voice_encoder.npz``
(``python -m tools.voice_encoder`` makes it), speech regions come from the Silero VAD that
faster-whisper already carries, and clustering is numpy.
"""

from podscribe.speakers.diarization import DiarizationOptions, SpeakerTurn, diarize
from podscribe.speakers.labelling import label_segments

__all__ = ["DiarizationOptions", "SpeakerTurn", "diarize", "label_segments"]
