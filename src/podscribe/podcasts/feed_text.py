"""A feed's bytes as text: one decoding, decided here, that every later check and parser sees.

XML names its encoding in a byte-order mark, in the order of the first bytes, or in the XML
declaration. A check that reads bytes (a regex for ``<!DOCTYPE``) is blind to UTF-16, UTF-32
and EBCDIC, while a parser reading the same bytes sees the declaration. So the feed is decoded
once, here, and re-encoded as UTF-8 with its declaration saying so: the DTD check runs on the
decoded text and both parsers get exactly the bytes that were checked.

Labels follow what browsers and Apple do (the WHATWG encoding rules): ISO-8859-1, Latin-1 and
US-ASCII mean windows-1252, so the C1 bytes podcast tools put in "Latin-1" feeds (curly quotes,
dashes) read as the characters meant. A feed that declares nothing is UTF-8, or windows-1252
when it is not valid UTF-8.
"""

from __future__ import annotations

import codecs
import re

__all__ = ["decode_feed", "utf8_document"]

_DECLARED = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']""")
_DECLARATION_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?)\sencoding\s*=\s*(["'])[^"']*\2""")
_WINDOWS_1252_LABELS = frozenset(
    {
        "ascii",
        "us-ascii",
        "iso-8859-1",
        "iso8859-1",
        "iso_8859-1",
        "latin1",
        "latin-1",
        "l1",
        "windows-1252",
        "cp1252",
        "x-cp1252",
    }
)
# The five bytes windows-1252 leaves undefined stay the C1 controls Latin-1 gives them.
_C1_AS_1252 = {
    code: (bytes([code]).decode("cp1252", errors="ignore") or chr(code))
    for code in range(0x80, 0xA0)
}
# (prefix, codec) for documents without a BOM, per Appendix F of the XML specification.
_UNMARKED = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_MARKS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_EBCDIC_DECLARATION = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC


def decode_feed(content: bytes) -> str:
    """The feed's text, decoded the way its bytes and declaration say (see the module doc).

    Undecodable bytes become U+FFFD: a replacement character cannot form markup, so nothing
    the checks did not see can appear later.
    """
    for mark, marked in _MARKS:
        if content.startswith(mark):
            return content[len(mark) :].decode(marked, errors="replace")
    codec = _sniffed_codec(content)
    if codec == "windows-1252":
        return _windows_1252(content)
    if codec is not None:
        return content.decode(codec, errors="replace")
    # No usable label (or a UTF-16/32 label on bytes that are not): UTF-8, else windows-1252.
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return _windows_1252(content)


def _sniffed_codec(content: bytes) -> str | None:
    """The codec the first bytes or the declaration name, when they name a usable one."""
    for prefix, unmarked in _UNMARKED:
        if content.startswith(prefix):
            return unmarked
    if content.startswith(_EBCDIC_DECLARATION):
        head = content[:256].decode("cp037", errors="replace").encode("ascii", errors="replace")
        return _codec(_label(head)) or "cp037"
    label = _label(content[:1024])
    if label in _WINDOWS_1252_LABELS:
        return "windows-1252"
    codec = _codec(label)
    return None if codec is None or codec.startswith(("utf-16", "utf-32")) else codec


def utf8_document(text: str) -> bytes:
    """The text as UTF-8 bytes whose XML declaration (if any) says UTF-8."""
    return _DECLARATION_ENCODING.sub(r'\1 encoding="utf-8"', text, count=1).encode(
        "utf-8", errors="replace"
    )


def _label(head: bytes) -> str | None:
    match = _DECLARED.match(head)
    return match[1].decode("ascii").lower() if match else None


def _codec(label: str | None) -> str | None:
    if label is None:
        return None
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _windows_1252(content: bytes) -> str:
    return content.decode("latin-1").translate(_C1_AS_1252)
