"""Transcription: audio in, segments and every caption format out.

Nothing is imported here: faster-whisper and PyAV are heavy, and the submit and dispatch
functions read formats and checkpoints without them. Import the module you need:

- :mod:`podscribe.transcription.model`: which model runs where (``EngineConfig``), loading it.
- :mod:`podscribe.transcription.engine`: the windowed run over an episode (``Transcriber``).
- :mod:`podscribe.transcription.decoder`: batched decoding until all speech is covered.
- :mod:`podscribe.transcription.windows`: where an episode is cut into windows and chunks.
- :mod:`podscribe.transcription.audio`: decoding to 16 kHz mono, stopping at the limit.
- :mod:`podscribe.transcription.segments`: ``Segment`` and ``Word``, as stored.
- :mod:`podscribe.transcription.formats`: txt, srt, vtt and json renderings.
- :mod:`podscribe.transcription.checkpoints`: resumable progress in storage.
"""

__all__: list[str] = []
