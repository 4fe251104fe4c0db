"""Content codings: which are accepted, and decoding in bounded pieces."""

from __future__ import annotations

import gzip
import zlib

import pytest

from podscribe.egress.content_coding import BoundedDecoder, Coding, content_coding
from podscribe.errors import FetchFailedError, UnsafeDocumentError

DOCUMENTS: frozenset[Coding] = frozenset({"gzip", "deflate"})
URL = "https://feeds.example.com/feed.xml"
TEXT = b"<rss>" + b"<item>an episode</item>" * 5000 + b"</rss>"


def decode_all(decoder: BoundedDecoder, data: bytes, step: int) -> list[bytes]:
    pieces = [
        piece
        for start in range(0, len(data), step)
        for piece in decoder.decode(data[start : start + step])
    ]
    decoder.finish()
    return pieces


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], "identity"),
        (["identity"], "identity"),
        (["GZIP"], "gzip"),
        (["x-gzip"], "gzip"),
        ([" deflate "], "deflate"),
        (["identity, gzip"], "gzip"),
    ],
)
def test_accepted_codings(headers, expected):
    assert content_coding(headers, allowed=DOCUMENTS, url=URL) == expected


@pytest.mark.parametrize(
    ("headers", "allowed", "said"),
    [
        (["gzip, gzip"], DOCUMENTS, "stacked"),
        (["gzip", "deflate"], DOCUMENTS, "stacked"),
        (["br"], DOCUMENTS, "unsupported content coding 'br'"),
        (["zstd"], DOCUMENTS, "unsupported"),
        (["compress"], DOCUMENTS, "unsupported"),
        (["gzip"], frozenset(), "gzip-coded reply is refused"),
    ],
)
def test_refused_codings(headers, allowed, said):
    with pytest.raises(UnsafeDocumentError, match=said) as refused:
        content_coding(headers, allowed=allowed, url=URL)
    assert refused.value.code == "unsafe_document"
    assert URL in refused.value.message


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [
        ("gzip", gzip.compress(TEXT)),
        ("gzip", gzip.compress(TEXT[:5000]) + gzip.compress(TEXT[5000:])),  # two members
        ("deflate", zlib.compress(TEXT)),
        ("deflate", zlib.compress(TEXT, wbits=-zlib.MAX_WBITS)),  # raw deflate
        ("identity", TEXT),
    ],
)
@pytest.mark.parametrize("step", [1, 7, 65536])
def test_decoding_in_pieces_gives_the_text_back(coding, encoded, step):
    pieces = decode_all(BoundedDecoder(coding, url=URL, piece_bytes=1000), encoded, step)
    assert b"".join(pieces) == TEXT
    assert max(len(piece) for piece in pieces) <= 1000


def test_a_bomb_yields_one_bounded_piece_at_a_time():
    bomb = gzip.compress(bytes(50 * 2**20), compresslevel=9)  # 50 KB -> 50 MiB
    pieces = BoundedDecoder("gzip", url=URL, piece_bytes=4096).decode(bomb)
    assert [len(next(pieces)) for _ in range(3)] == [4096] * 3


def test_a_truncated_body_is_a_failed_fetch():
    decoder = BoundedDecoder("gzip", url=URL)
    list(decoder.decode(gzip.compress(TEXT)[:-20]))
    with pytest.raises(FetchFailedError, match="ended early"):
        decoder.finish()


def test_corrupt_data_is_a_failed_fetch():
    with pytest.raises(FetchFailedError, match="corrupt gzip"):
        list(BoundedDecoder("gzip", url=URL).decode(b"\x1f\x8b\x08\x00" + b"\xff" * 64))


@pytest.mark.parametrize(
    ("coding", "encoded"),
    [("deflate", zlib.compress(TEXT)), ("gzip", gzip.compress(TEXT) + b"\x00" * 8)],
)
def test_what_follows_the_end_of_the_stream_is_dropped(coding, encoded):
    decoder = BoundedDecoder(coding, url=URL)
    data = encoded + b"junk after the end"
    assert b"".join(decode_all(decoder, data, 100)) == TEXT
    assert list(decoder.decode(b"more junk")) == []


def test_an_empty_coded_body_is_empty():
    decoder = BoundedDecoder("gzip", url=URL)
    assert list(decoder.decode(b"")) == []
    decoder.finish()
