"""The one configuration model of podscribe, in groups.

Every part (submit, dispatch, the Vertex job, the local profile) reads its configuration
through :func:`get_settings`; nothing else in the package reads the environment. Each field
names its environment variable explicitly (``PODSCRIBE_*`` for the service, ``WHISPER_*``
for the transcription engine, and the variables Google's own libraries honour), so the
README's configuration table, Terraform's function environments and the Kubernetes manifests
can all be checked against this one list.

Production reads the same names: Secret Manager values arrive as environment variables
(Cloud Functions ``secret_environment_variables``) or as files in ``PODSCRIBE_SECRETS_DIR``.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from pydantic import AliasChoices, ValidationError, model_validator

from podscribe.errors import SettingsError
from podscribe.settings.api import ApiSettings, CliSettings, RateLimitSettings, WebhookSettings
from podscribe.settings.base import Environment, Launcher, SettingsGroup, WhisperDevice
from podscribe.settings.budgets import BudgetSettings
from podscribe.settings.egress import FetchSettings
from podscribe.settings.execution import (
    JobSettings,
    LaunchSettings,
    LocalProfileSettings,
    TranscriptionSettings,
)
from podscribe.settings.platform import (
    DatabaseSettings,
    MessagingSettings,
    ProfileSettings,
    StorageSettings,
)

__all__ = [
    "GROUPS",
    "ApiSettings",
    "BudgetSettings",
    "CliSettings",
    "DatabaseSettings",
    "Environment",
    "FetchSettings",
    "JobSettings",
    "LaunchSettings",
    "Launcher",
    "LocalProfileSettings",
    "MessagingSettings",
    "ProfileSettings",
    "RateLimitSettings",
    "Settings",
    "SettingsGroup",
    "StorageSettings",
    "TranscriptionSettings",
    "WebhookSettings",
    "WhisperDevice",
    "env_name",
    "get_settings",
    "load_settings",
    "settings_table",
]


class Settings(
    CliSettings,
    TranscriptionSettings,
    LocalProfileSettings,
    LaunchSettings,
    FetchSettings,
    StorageSettings,
    WebhookSettings,
    BudgetSettings,
    MessagingSettings,
    RateLimitSettings,
    ApiSettings,
    JobSettings,
    DatabaseSettings,
    ProfileSettings,
):
    """podscribe's whole configuration: every group, one field per environment variable.

    Groups are base classes rather than nested models so that each variable keeps its name,
    every override stays one keyword (``load_settings(max_redirects=3)``) and the cross-group
    rules validate once; a component typed with one group (``FetchSettings``) is handed the
    whole object and may read only that group. Fields are documented by their
    ``description``; ``tests/unit/test_readme.py`` keeps the README's table equal to them.
    """

    @model_validator(mode="after")
    def _production_model(self) -> Settings:
        problem = self.production_model_problem(
            self.env, on_cloud_sql=self.cloudsql_connection_name is not None
        )
        if problem is not None:
            raise ValueError(problem)
        return self


def env_name(field: str) -> str:
    """The environment variable a settings field is read from."""
    alias = Settings.model_fields[field].validation_alias
    assert isinstance(alias, AliasChoices)  # noqa: S101 - every field declares one
    first = alias.choices[0]
    assert isinstance(first, str)  # noqa: S101
    return first


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = field if field.isupper() else _alias_for(field)
        lines.append(f"{name}: {item['msg']}" if name else str(item["msg"]))
    return "; ".join(lines)


def _alias_for(field: str) -> str:
    return env_name(field) if field in Settings.model_fields else field


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration from the environment (and ``PODSCRIBE_SECRETS_DIR`` files).

    Args:
        overrides: field values that win over the environment (tests, tools).

    Returns:
        The validated settings.

    Raises:
        SettingsError: a variable is missing or malformed; the message names it.
    """
    secrets_dir = os.environ.get("PODSCRIBE_SECRETS_DIR")
    try:
        if secrets_dir:
            return Settings(_secrets_dir=secrets_dir, **overrides)
        return Settings(**overrides)
    except ValidationError as error:
        raise SettingsError(f"invalid configuration: {_describe(error)}") from None
    except ValueError as error:
        raise SettingsError(f"invalid configuration: {error}") from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


# The groups in the order the README lists them.
GROUPS: tuple[type[SettingsGroup], ...] = (
    ProfileSettings,
    DatabaseSettings,
    StorageSettings,
    MessagingSettings,
    ApiSettings,
    RateLimitSettings,
    WebhookSettings,
    BudgetSettings,
    FetchSettings,
    JobSettings,
    LaunchSettings,
    TranscriptionSettings,
    LocalProfileSettings,
    CliSettings,
)


def _own_fields(group: type[SettingsGroup]) -> list[str]:
    """The fields a group declares itself (not those of the groups it builds on)."""
    inherited = {name for base in group.__mro__[1:] for name in getattr(base, "model_fields", {})}
    return [name for name in group.model_fields if name not in inherited]


def _default(info: Any) -> str:
    if info.is_required():
        return ""
    if info.default_factory is not None:
        value = info.default_factory()
        return f"`{','.join(map(str, value))}`" if value else "(empty)"
    if info.default is None:
        return "(unset)"
    if isinstance(info.default, bool):
        return f"`{str(info.default).lower()}`"
    return f"`{info.default}`"


def settings_table() -> str:
    """The README's configuration tables, one per group, generated from the model.

    ``tests/unit/test_readme.py`` keeps the README's copy equal to it.
    """
    sections = []
    for group in GROUPS:
        rows = [
            f"**{group.__name__}**: {(group.__doc__ or '').strip()}",
            "",
            "| Variable | Description | Default | Required |",
            "|----------|-------------|---------|:--------:|",
        ]
        for name in _own_fields(group):
            info = Settings.model_fields[name]
            description = (info.description or "").replace("|", "\\|")
            required = "yes" if info.is_required() else "no"
            rows.append(f"| `{env_name(name)}` | {description} | {_default(info)} | {required} |")
        sections.append("\n".join(rows))
    return "\n\n".join(sections)
