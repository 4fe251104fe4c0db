"""How a transcript is rendered for one reader: speaker names, speakers at all, caption sizes.

A transcript stores diarization labels (``S1``, ``S2``...); the names a caller gives them are
applied only when rendering, so a rename never rewrites the stored transcript and every format
picks the new names up at once. The bounds are checked here, in one place, so the API can turn
a bad value into a 422 and the renderers can trust what they get.

Names come from callers, so they are untrusted text: :meth:`RenderOptions.speaker` collapses
whitespace (a name never breaks a line) and drops control characters; each format escapes what
its syntax needs on top.
"""

from __future__ import annotations

import types
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_OPTIONS",
    "LINES_RANGE",
    "LINE_CHARS_RANGE",
    "MAX_SPEAKER_NAME_CHARS",
    "RenderOptions",
    "clean_name",
]

LINE_CHARS_RANGE = (16, 200)
"""The narrowest and widest caption line a caller may ask for."""
LINES_RANGE = (1, 4)
"""The fewest and most lines per caption a caller may ask for."""
MAX_SPEAKER_NAME_CHARS = 100
"""The longest speaker name (after whitespace is collapsed)."""


def clean_name(text: str) -> str:
    """A name on one line: whitespace runs become one space, control characters go."""
    printable = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(printable.split())


@dataclass(frozen=True)
class RenderOptions:
    """Per-request rendering choices.

    Attributes:
        speaker_names: diarization label -> display name (``{"S1": "Ann"}``); a label with no
            name renders as itself.
        speakers: False leaves every speaker out of the output, labels and names alike.
        max_line_chars: the widest caption line (SRT and WebVTT); None: the format's default.
        max_lines: lines per caption (SRT and WebVTT); None: the format's default.

    Raises:
        ValueError: a bound outside :data:`LINE_CHARS_RANGE` / :data:`LINES_RANGE`, or a name
            that is empty or longer than :data:`MAX_SPEAKER_NAME_CHARS` once cleaned. The
            message names the field, so the API can answer 422 with it.
    """

    speaker_names: Mapping[str, str] = field(default_factory=dict)
    speakers: bool = True
    max_line_chars: int | None = None
    max_lines: int | None = None

    def __post_init__(self) -> None:
        _check_bound("max_line_chars", self.max_line_chars, LINE_CHARS_RANGE)
        _check_bound("max_lines", self.max_lines, LINES_RANGE)
        names: dict[str, str] = {}
        # Typed loosely on purpose: the mapping often comes straight from a JSON body.
        pairs: Iterable[tuple[object, object]] = self.speaker_names.items()
        for label, name in pairs:
            if not isinstance(label, str) or not isinstance(name, str):
                # ValueError, not TypeError: like every other bad option, the API answers 422.
                raise ValueError(  # noqa: TRY004 - a 422 like every bad option, see above
                    "speaker_names must map speaker labels to names (strings)"
                )
            cleaned = clean_name(name)
            if not cleaned or len(cleaned) > MAX_SPEAKER_NAME_CHARS:
                raise ValueError(
                    f"speaker_names[{label[:40]!r}] must be 1 to {MAX_SPEAKER_NAME_CHARS} "
                    "characters"
                )
            names[label] = cleaned
        # A private, read-only copy: the caller's dict may change after the check.
        object.__setattr__(self, "speaker_names", types.MappingProxyType(names))

    def speaker(self, label: str | None) -> str | None:
        """The name to show for a segment's speaker label, or None for no speaker."""
        if not self.speakers or label is None:
            return None
        return self.speaker_names.get(label) or clean_name(label) or None

    def line_chars(self, default: int) -> int:
        """:attr:`max_line_chars`, or the format's ``default``."""
        return default if self.max_line_chars is None else self.max_line_chars

    def lines(self, default: int) -> int:
        """:attr:`max_lines`, or the format's ``default``."""
        return default if self.max_lines is None else self.max_lines


def _check_bound(name: str, value: object, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")


DEFAULT_OPTIONS = RenderOptions()
"""Labels as they are, the formats' own caption sizes."""
