"""The settings model: names, validation, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from podscribe.errors import SettingsError
from podscribe.settings import Settings, env_name, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields:
        monkeypatch.delenv(env_name(field), raising=False)
    monkeypatch.delenv("PODSCRIBE_SECRETS_DIR", raising=False)


def test_every_variable_is_prefixed_or_google_owned() -> None:
    google = {"CLOUDSQL_CONNECTION_NAME", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"}
    aws = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}  # boto3's names
    for field in Settings.model_fields:
        name = env_name(field)
        assert name.startswith(("PODSCRIBE_", "WHISPER_")) or name in google | aws, name
        assert Settings.model_fields[field].description, f"{name} has no description"


def test_defaults_are_safe() -> None:
    settings = load_settings()
    assert settings.env == "production"
    assert settings.allowed_ports == [80, 443]
    assert settings.ssrf_allow == []
    assert settings.api_keys == []
    assert settings.whisper_device == "auto"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODSCRIBE_API_KEYS", "alpha, beta,,")
    monkeypatch.setenv("PODSCRIBE_ALLOWED_PORTS", "443,8443")
    monkeypatch.setenv("WHISPER_BATCH_SIZE", "16")
    monkeypatch.setenv("CLOUDSQL_CONNECTION_NAME", "p:r:i")
    # Production on Cloud SQL names its model (tests/unit/test_production_model.py).
    monkeypatch.setenv("WHISPER_MODEL", "/opt/models/large-v3-turbo")
    settings = load_settings()
    assert settings.api_key_values == ["alpha", "beta"]
    assert settings.allowed_ports == [443, 8443]
    assert settings.whisper_batch_size == 16
    assert settings.cloudsql_connection_name == "p:r:i"


def test_secrets_are_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODSCRIBE_API_KEYS", "very-secret-key")
    monkeypatch.setenv("PODSCRIBE_DATABASE_URL", "postgresql://u:hunter2@db/x")
    text = repr(load_settings())
    assert "very-secret-key" not in text
    assert "hunter2" not in text


def test_secret_files_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "PODSCRIBE_API_KEYS").write_text("from-secret-manager")
    monkeypatch.setenv("PODSCRIBE_SECRETS_DIR", str(tmp_path))
    assert load_settings().api_key_values == ["from-secret-manager"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PODSCRIBE_MAX_ATTEMPTS", "many"),
        ("PODSCRIBE_MAX_ATTEMPTS", "0"),
        ("PODSCRIBE_ENV", "staging"),
        ("WHISPER_DEVICE", "tpu"),
        ("PODSCRIBE_DATABASE_URL", "mysql://x@y/z"),
        ("PODSCRIBE_BUCKET", "ab"),
        ("PODSCRIBE_ALLOWED_PORTS", "https"),
        ("PODSCRIBE_LAUNCHER", "lambda"),
        ("PODSCRIBE_WORKER_IDLE_SECONDS", "3601"),
        ("PODSCRIBE_WORKER_MAX_SECONDS", "59"),
        ("PODSCRIBE_WORKER_POLL_SECONDS", "0"),
    ],
)
def test_misconfiguration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_the_ssrf_escape_hatch_refuses_to_start_outside_the_local_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PODSCRIBE_SSRF_ALLOW", "127.0.0.1:9000")
    with pytest.raises(SettingsError, match="PODSCRIBE_SSRF_ALLOW is honoured only with"):
        load_settings()
    monkeypatch.setenv("PODSCRIBE_ENV", "local")
    assert load_settings().ssrf_allow == ["127.0.0.1:9000"]


@pytest.mark.parametrize(
    "pair", ["10.0.0.1:80", "example.com:443", "127.0.0.1", "127.0.0.1:0", "[::2]:80", "x:y"]
)
def test_the_escape_hatch_takes_only_loopback_host_port_pairs(
    monkeypatch: pytest.MonkeyPatch, pair: str
) -> None:
    monkeypatch.setenv("PODSCRIBE_ENV", "local")
    monkeypatch.setenv("PODSCRIBE_SSRF_ALLOW", pair)
    with pytest.raises(SettingsError, match="PODSCRIBE_SSRF_ALLOW"):
        load_settings()


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.env = "local"  # type: ignore[misc]


def test_every_field_belongs_to_exactly_one_group() -> None:
    from podscribe.settings import GROUPS, _own_fields

    listed = [name for group in GROUPS for name in _own_fields(group)]
    assert sorted(listed) == sorted(Settings.model_fields)
    assert len(listed) == len(set(listed))


def test_every_groups_validators_hold_in_the_whole_settings() -> None:
    """Validators of two groups sharing a name would silently replace one another."""
    from podscribe.settings import GROUPS

    whole = Settings.__pydantic_decorators__
    for group in GROUPS:
        own = group.__pydantic_decorators__
        assert set(own.field_validators) <= set(whole.field_validators), group.__name__
        assert set(own.model_validators) <= set(whole.model_validators), group.__name__
    names = [
        name
        for group in GROUPS
        for name in vars(group)
        if name.startswith("_")
        and callable(getattr(group, name, None))
        and not name.startswith("__")
    ]
    assert len(names) == len(set(names)), "two groups define a validator of the same name"
