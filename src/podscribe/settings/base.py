"""What every settings group shares: the model configuration and the field helpers."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Environment", "Launcher", "SettingsGroup", "WhisperDevice", "split_csv", "variable"]

Environment = Literal["local", "test", "production"]
Launcher = Literal["vertex", "local", "kubernetes"]
WhisperDevice = Literal["auto", "cpu", "cuda"]


class SettingsGroup(BaseSettings):
    """A group of settings: frozen, validated, each field read from the variable it names."""

    model_config = SettingsConfigDict(
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        validate_default=True,
    )


def variable(name: str) -> Any:
    """Field alias helper: the environment variable a field is read from."""
    return AliasChoices(name)


def split_csv(value: Any) -> Any:
    """A comma-separated variable as a list (already-split values pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value
