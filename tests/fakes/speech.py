"""Test speech made on the spot: espeak-ng reads a text, PyAV encodes it like a podcast.

Real recordings of known text are scarce and large; synthetic speech lets a test choose its
length, its words (so the word error rate can be measured) and its silences. espeak-ng writes
16-bit PCM WAV; PyAV (the wheels ship libmp3lame and the native AAC encoder, no ffmpeg binary
needed) turns it into MP3 or AAC in an MP4/M4A container, the two formats podcasts ship in.
"""

from __future__ import annotations

import random
import subprocess
import wave
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream

# Plain sentences a small English model should hear right; shuffled into episodes of any length.
SENTENCES = (
    "The morning train was late again, so the station filled with people reading the news.",
    "She opened the window and let the cold air into the kitchen before breakfast.",
    "Our guest today has spent twenty years building bridges across wide rivers.",
    "Every good story needs a beginning, a middle and an end that people remember.",
    "The library closes at six in the evening on weekdays and at noon on Saturday.",
    "He planted tomatoes in the garden and watered them every single day.",
    "When the storm passed, the children ran outside to look at the bright sky.",
    "The company decided to open a new office in the center of the city.",
    "Music can change the mood of a room faster than almost anything else.",
    "We talked about the history of the old harbor and the ships that sailed from it.",
    "Please remember to bring a warm coat because the nights are getting colder.",
    "The teacher asked the class to write a short letter to a friend far away.",
    "Fresh bread from the bakery on the corner is the best part of the weekend.",
    "The team worked late into the night to finish the project on time.",
    "A quiet walk in the park is a simple way to clear your mind after work.",
    "The river runs through the valley and past the small farms on either side.",
    "Scientists measured the temperature of the water at many places along the coast.",
    "My grandfather told us stories about the years he spent working on the railway.",
    "The market sells apples, oranges and cheese from the farms nearby.",
    "At the end of the day, the most important thing is to listen to each other.",
)

SAMPLE_RATE = 22_050  # espeak-ng's output rate


def episode_text(seconds: float, *, seed: int = 7) -> str:
    """Enough sentences for about ``seconds`` of speech at espeak-ng's default pace.

    Args:
        seconds: the wanted length; asked for 165 words a minute, espeak-ng reads these
            sentences at about 192 (measured on a ten-minute episode).
        seed: which shuffle of the sentences.
    """
    rng = random.Random(seed)
    words_wanted = seconds * 192 / 60
    chosen: list[str] = []
    words = 0
    pool: list[str] = []
    while words < words_wanted:
        if not pool:
            pool = list(SENTENCES)
            rng.shuffle(pool)
        sentence = pool.pop()
        chosen.append(sentence)
        words += len(sentence.split())
    return " ".join(chosen)


def speak(text: str, wav_path: Path, *, words_per_minute: int = 165) -> Path:
    """Read ``text`` aloud with espeak-ng into a mono 22.05 kHz 16-bit WAV file."""
    subprocess.run(
        ["espeak-ng", "-s", str(words_per_minute), "-w", str(wav_path), "--stdin"],
        input=text.encode("utf-8"),
        check=True,
        capture_output=True,
    )
    return wav_path


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit mono WAV's samples as int16."""
    with wave.open(str(path), "rb") as source:
        return np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)


def write_wav(samples: np.ndarray, path: Path, *, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write int16 mono samples as a WAV file."""
    with wave.open(str(path), "wb") as sink:
        sink.setnchannels(1)
        sink.setsampwidth(2)
        sink.setframerate(sample_rate)
        sink.writeframes(np.ascontiguousarray(samples, dtype=np.int16).tobytes())
    return path


def silence(seconds: float, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Digital silence with a faint noise floor, as a real recording's pauses have."""
    rng = np.random.default_rng(3)
    count = int(seconds * sample_rate)
    return rng.normal(0.0, 8.0, count).clip(-32768, 32767).astype(np.int16)


def encode(wav_path: Path, destination: Path, *, codec: str, bitrate: int = 64_000) -> Path:
    """Encode a WAV file as MP3 (``codec="mp3"``) or AAC in M4A (``codec="aac"``) with PyAV.

    Args:
        wav_path: mono 16-bit PCM input.
        destination: the output file; its suffix should match (``.mp3`` or ``.m4a``).
        codec: ``mp3`` (libmp3lame) or ``aac``.
        bitrate: target bits per second.
    """
    encoder = {"mp3": "libmp3lame", "aac": "aac"}[codec]
    container_format = {"mp3": "mp3", "aac": "ipod"}[codec]
    with (
        av.open(str(wav_path)) as source,
        av.open(str(destination), "w", format=container_format) as sink,
    ):
        rate = 44_100 if codec == "aac" else SAMPLE_RATE
        stream = sink.add_stream(encoder, rate=rate)
        assert isinstance(stream, AudioStream)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.codec_context.format, layout="mono", rate=rate)
        for frame in source.decode(audio=0):
            frame.pts = None
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    sink.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                sink.mux(packet)
        for packet in stream.encode(None):
            sink.mux(packet)
    return destination


def make_episode(
    directory: Path,
    *,
    seconds: float,
    codec: str = "mp3",
    seed: int = 7,
    name: str = "episode",
    intro: str = "",
) -> tuple[Path, str]:
    """Synthesize a speech episode of about ``seconds`` and encode it.

    Args:
        intro: said first, as hosts open a show ("Welcome to ...").

    Returns:
        The encoded file and the text that was spoken (the reference for WER).
    """
    text = " ".join(filter(None, (intro, episode_text(seconds, seed=seed))))
    wav = speak(text, directory / f"{name}.wav")
    suffix = {"mp3": ".mp3", "aac": ".m4a"}[codec]
    return encode(wav, directory / f"{name}{suffix}", codec=codec), text


def make_episode_with_silences(
    directory: Path, *, parts: int, speech_seconds: float, silence_seconds: float, codec: str
) -> tuple[Path, str, list[tuple[float, float]]]:
    """Speech, long silence, speech, ...: where Whisper likes to invent text.

    Returns:
        The encoded file, the spoken text, and the (start, end) seconds of each silence.
    """
    pieces: list[np.ndarray] = []
    texts: list[str] = []
    gaps: list[tuple[float, float]] = []
    position = 0
    for index in range(parts):
        text = episode_text(speech_seconds, seed=100 + index)
        speech = read_wav(speak(text, directory / f"part{index}.wav"))
        pieces.append(speech)
        texts.append(text)
        position += len(speech)
        if index < parts - 1:
            gap = silence(silence_seconds)
            gaps.append((position / SAMPLE_RATE, (position + len(gap)) / SAMPLE_RATE))
            pieces.append(gap)
            position += len(gap)
    wav = write_wav(np.concatenate(pieces), directory / "with-silences.wav")
    suffix = {"mp3": ".mp3", "aac": ".m4a"}[codec]
    encoded = encode(wav, directory / f"with-silences{suffix}", codec=codec)
    return encoded, " ".join(texts), gaps
