"""Content codings (``Content-Encoding``), decoded with bounded memory.

httpx decodes each chunk it receives in one call, so a 64 KiB chunk of compressed zeros becomes
64 MiB at once, and a stacked coding (``gzip, gzip``) turns a 3.5 KB reply into gigabytes
before any size cap could look at it. Here the raw body is decoded by a
:class:`BoundedDecoder` that never produces more than ``piece_bytes`` per step
(``zlib``'s ``max_length``), so a caller counting decoded bytes stops a bomb after at most one
piece beyond its cap.

Only what a podcast host plausibly sends is accepted: ``gzip`` (and its old spelling
``x-gzip``), ``deflate``, and ``identity``. Stacked codings serve no honest purpose and are
refused, as are codings without a decoder here: ``br`` (no Brotli decoder is installed),
``zstd`` (not in this Python's standard library), ``compress``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Literal

from podscribe.errors import FetchFailedError, UnsafeDocumentError

__all__ = [
    "ACCEPT_ENCODING",
    "PIECE_BYTES",
    "BoundedDecoder",
    "Coding",
    "content_coding",
]

Coding = Literal["identity", "gzip", "deflate"]

#: The ``Accept-Encoding`` to send when a coded reply is acceptable: what we can decode.
ACCEPT_ENCODING = "gzip, deflate"
#: The most one decoding step produces; bounds a decoder's output between two cap checks.
PIECE_BYTES = 64 * 1024

_ALIASES: dict[str, Coding] = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}
# wbits: 16 + MAX_WBITS reads a gzip member; MAX_WBITS a zlib stream; -MAX_WBITS raw deflate.
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_GZIP_MAGIC = b"\x1f\x8b"


def content_coding(header_values: Iterable[str], *, allowed: frozenset[Coding], url: str) -> Coding:
    """The one coding a reply's ``Content-Encoding`` headers name, if it is allowed.

    Args:
        header_values: every ``Content-Encoding`` header of the reply (a list may be split
            across headers as well as commas).
        allowed: the codings this kind of fetch accepts besides ``identity``.
        url: for the error message.

    Returns:
        ``identity`` when the body is not coded, else the (normalised) coding.

    Raises:
        UnsafeDocumentError: more than one coding, a coding we cannot decode, or a coding
            where none is accepted (audio, webhook replies).
    """
    named = [
        token.strip().lower()
        for value in header_values
        for token in value.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if not named:
        return "identity"
    if len(named) > 1:
        raise UnsafeDocumentError(
            f"{url}: stacked content codings ({', '.join(named)}) are refused"
        )
    coding = _ALIASES.get(named[0])
    if coding is None:
        raise UnsafeDocumentError(f"{url}: unsupported content coding {named[0]!r}")
    if coding not in allowed:
        raise UnsafeDocumentError(f"{url}: a {coding}-coded reply is refused here")
    return coding


class BoundedDecoder:
    """Decodes one content coding incrementally, at most ``piece_bytes`` per yielded piece.

    Feed raw chunks to :meth:`decode` and consume its pieces before asking for more; call
    :meth:`finish` once the body has ended. Memory held is the decompressor's window plus at
    most one raw chunk (``unconsumed_tail``) and one piece, however large the output would be.

    Args:
        coding: the coding of the body.
        url: for error messages.
        piece_bytes: the largest piece one step yields.
    """

    def __init__(self, coding: Coding, *, url: str, piece_bytes: int = PIECE_BYTES) -> None:
        self._coding = coding
        self._url = url
        self._piece = piece_bytes
        self._inflater: zlib._Decompress | None = None
        self._first_bytes = b""  # deflate: held until the wrapper can be told apart
        self._seen_input = False
        self._ended = False  # the coded stream is complete: what follows is not content

    def decode(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``, lazily: each is produced only when asked for.

        Raises:
            FetchFailedError: the coded data is corrupt.
        """
        if not data:
            return
        self._seen_input = True
        if self._ended:
            return
        if self._coding == "identity":
            for start in range(0, len(data), self._piece):
                yield data[start : start + self._piece]
            return
        if self._inflater is None:
            data = self._first_bytes + data
            if self._coding == "deflate" and len(data) < 2:
                self._first_bytes = data
                return
            self._first_bytes = b""
            self._inflater = zlib.decompressobj(self._wbits(data))
        yield from self._inflate(self._inflater, data)

    def finish(self) -> None:
        """Check that a coded body ended where its coding says it ends.

        Raises:
            FetchFailedError: the body stopped before the end of its compressed stream.
        """
        if self._coding == "identity" or not self._seen_input:
            return  # an empty body is empty whatever it claims to be coded with
        if not (self._ended or (self._inflater is not None and self._inflater.eof)):
            raise FetchFailedError(f"{self._url}: the {self._coding} body ended early")

    def _wbits(self, head: bytes) -> int:
        if self._coding == "gzip":
            return _GZIP_WBITS
        # "deflate" means a zlib stream (RFC 9110), but some servers send raw deflate, as
        # browsers and httpx accept: a zlib header (RFC 1950) is told apart by its checksum.
        zlib_wrapped = head[0] & 0x0F == zlib.DEFLATED and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            try:
                piece = inflater.decompress(pending, self._piece)
            except zlib.error as error:
                raise FetchFailedError(
                    f"{self._url}: corrupt {self._coding} body: {error}"
                ) from error
            pending = inflater.unconsumed_tail
            if piece:
                yield piece
            if inflater.eof:
                rest = inflater.unused_data
                # A gzip body may be several members end to end (RFC 1952 section 2.2);
                # anything else after the end (padding, junk) is dropped, as zlib would.
                if self._coding == "gzip" and rest and _GZIP_MAGIC.startswith(rest[:2]):
                    inflater = self._inflater = zlib.decompressobj(_GZIP_WBITS)
                    pending = rest
                    continue
                if self._coding != "gzip" or rest:
                    self._ended = True
                return  # a gzip member ended with the chunk: another may follow
            # A full piece may leave output inside zlib even when all input was taken.
            if not pending and len(piece) < self._piece:
                return
