"""Hours of Opus in WebM, made in seconds: the kind of file that tests the longest episode.

Opus at 6 kbit/s keeps seven hours in about 13 MB, and a WebM written as a live stream declares
no duration, so neither the file's size nor its header gives its length away; or the header
can declare a length that is false. Encoding hours would take minutes, so one block of low
noise is encoded once and its packets are muxed again and again with shifted timestamps: a
valid stream that decodes to as many hours as asked, in seconds.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

RATE = 48_000
_FRAME = RATE * 60 // 1000  # Opus's longest frame, 60 ms: the fewest packets to mux
_BLOCK_FRAMES = 160  # 9.6 s encoded once, repeated


def make_long_opus(path: Path, seconds: float, *, declared_seconds: float | None) -> Path:
    """Write ``seconds`` of quiet noise as mono Opus in WebM.

    Args:
        path: where to write the file.
        seconds: how long it decodes to (rounded down to whole 9.6 s blocks, at least one).
        declared_seconds: the duration its header declares (true or not); None declares none
            (a live WebM: no duration, no cues), so a reader learns the length only by decoding.
    """
    import av

    options = {} if declared_seconds is not None else {"live": "1"}
    with av.open(str(path), "w", format="webm", options=options) as container:
        stream = container.add_stream("libopus", rate=RATE)
        stream.layout = "mono"
        stream.bit_rate = 6000
        stream.options = {"frame_duration": "60"}
        noise = np.random.default_rng(7).standard_normal(_BLOCK_FRAMES * _FRAME) * 30
        frame = av.AudioFrame.from_ndarray(
            noise.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = RATE, 0
        # The encoder's flush packets finish the block; repeated, only whole frames are used.
        packets = [*stream.encode(frame), *stream.encode(None)][:_BLOCK_FRAMES]
        span = _BLOCK_FRAMES * _FRAME
        for block in range(max(1, int(seconds // (span / RATE)))):
            for packet in packets:
                assert packet.pts is not None
                copy = av.Packet(bytes(packet))
                copy.pts = copy.dts = packet.pts + block * span
                copy.duration, copy.time_base, copy.stream = (
                    packet.duration,
                    packet.time_base,
                    stream,
                )
                container.mux(copy)
    if declared_seconds is not None:
        _declare(path, declared_seconds)
    return path


def _declare(path: Path, seconds: float) -> None:
    """Overwrite the Segment Info's Duration (EBML id 0x4489, an 8-byte float of milliseconds)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")
    if at < 0:
        raise ValueError(f"{path} declares no duration to overwrite")
    data[at + 3 : at + 11] = struct.pack(">d", seconds * 1000)
    path.write_bytes(bytes(data))
