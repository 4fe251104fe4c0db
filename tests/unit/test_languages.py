"""Which languages a model transcribes, and the submit check that keeps a GPU off the wrong ones."""

from __future__ import annotations

import json

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from podscribe.api.validation import parse_submit_request
from podscribe.errors import UnsupportedLanguageError
from podscribe.settings import load_settings
from podscribe.transcription.languages import WHISPER_LANGUAGES, model_languages
from podscribe.transcription.model import served_model_name

URL = "https://podcasts.apple.com/us/podcast/a-show/id1535809341?i=1000651234567"


def submit(body: dict[str, object]) -> Request:
    environ = EnvironBuilder(
        method="POST", data=json.dumps(body), content_type="application/json"
    ).get_environ()
    return Request(environ)


def test_the_list_is_whispers_own() -> None:
    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("tiny.en", {"en"}),
        ("base.en", {"en"}),
        ("distil-large-v3", {"en"}),
        ("/models/Distil-Medium.en/", {"en"}),
        ("large-v3", WHISPER_LANGUAGES),
        ("large-v3-turbo", WHISPER_LANGUAGES),
        ("/opt/models/tiny", WHISPER_LANGUAGES),
    ],
)
def test_english_only_checkpoints_know_english_alone(model: str, expected: set[str]) -> None:
    assert model_languages(model) == frozenset(expected)


def test_the_served_model_is_the_one_asked_for_only_when_it_is_allowed() -> None:
    settings = load_settings(env="test", allowed_models=["large-v3"], whisper_model="tiny.en")
    assert served_model_name(settings, "large-v3") == "large-v3"
    assert served_model_name(settings, "base") == "tiny.en"
    assert served_model_name(settings) == "tiny.en"
    assert served_model_name(load_settings(env="test", whisper_model=None)) == "tiny.en"


@pytest.mark.parametrize("language", ["zz", "fr", "haw"])
def test_a_language_the_default_english_model_cannot_transcribe_is_422(language: str) -> None:
    settings = load_settings(env="test", whisper_model=None)
    with pytest.raises(UnsupportedLanguageError) as refused:
        parse_submit_request(submit({"url": URL, "language": language}), settings)
    assert refused.value.http_status == 422
    assert refused.value.code == "unsupported_language"
    assert f"'{language}'" in refused.value.message and "tiny.en" in refused.value.message
    assert "https://github.com/openai/whisper" in refused.value.message


def test_a_multilingual_model_takes_its_languages_and_refuses_others() -> None:
    settings = load_settings(env="test", allowed_models=["large-v3"], whisper_model="tiny.en")
    accepted = parse_submit_request(
        submit({"url": URL, "language": "FR", "model": "large-v3"}), settings
    )
    assert (accepted.language, accepted.model) == ("fr", "large-v3")
    with pytest.raises(UnsupportedLanguageError):
        parse_submit_request(submit({"url": URL, "language": "zz", "model": "large-v3"}), settings)
    # The same language on the deployment's English-only default is refused.
    with pytest.raises(UnsupportedLanguageError):
        parse_submit_request(submit({"url": URL, "language": "fr"}), settings)


def test_english_and_no_language_pass_on_an_english_model() -> None:
    settings = load_settings(env="test", whisper_model=None)
    assert parse_submit_request(submit({"url": URL, "language": "en"}), settings).language == "en"
    assert parse_submit_request(submit({"url": URL}), settings).language is None
