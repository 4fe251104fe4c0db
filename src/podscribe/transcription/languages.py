"""Which languages a Whisper model transcribes: what submit checks ``language`` against.

Whisper's multilingual checkpoints know the languages of its tokenizer; the English-only ones
(``*.en`` and the distilled ``distil-*`` models) know English alone, and asking them for another
language would spend a GPU on a transcript in the wrong language. The list is Whisper's own
(``faster_whisper.tokenizer._LANGUAGE_CODES``), written out because submit does not install
faster-whisper; ``tests/unit/test_languages.py`` keeps the two equal.
"""

from __future__ import annotations

from pathlib import PurePath

__all__ = ["LANGUAGE_LIST_URL", "WHISPER_LANGUAGES", "model_languages"]

# Where a caller reads the codes (the tokenizer's LANGUAGES table).
LANGUAGE_LIST_URL = "https://github.com/openai/whisper/blob/main/whisper/tokenizer.py"

# One string, split: a hundred codes read in four lines.
_CODES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha "
    "haw he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn "
    "mr ms mt my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te "
    "tg th tk tl tr tt uk ur uz vi yi yo yue zh"
)
WHISPER_LANGUAGES: frozenset[str] = frozenset(_CODES.split())
_ENGLISH = frozenset({"en"})


def model_languages(model: str) -> frozenset[str]:
    """The language codes ``model`` (a name or a path to a CTranslate2 folder) transcribes."""
    name = PurePath(model.rstrip("/")).name.lower()
    if name.endswith(".en") or name.startswith("distil-"):
        return _ENGLISH
    return WHISPER_LANGUAGES
