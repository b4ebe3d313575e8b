"""Typed settings from the environment (and an optional ``.env`` file).

An invalid value stops start-up with one line naming the variable; secrets are
``SecretStr`` and never appear in logs or error messages.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from storage.db import normalize_database_url

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "fr")
TELEGRAM_API = "https://api.telegram.org"
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_BOT_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{10,}$")


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_nested_delimiter="__",
    )

    bot_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///citizenbot.db"
    telegram_api_base: str = TELEGRAM_API
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    default_language: Literal["en", "fr"] = "en"
    timezone: str = "UTC"
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_concurrent_updates: int = Field(default=64, ge=1, le=10_000)
    polling_timeout: int = Field(default=25, ge=0, le=50)
    flood_rate_per_second: float = Field(default=1.0, gt=0)
    flood_burst: int = Field(default=20, ge=1)
    outbox_rate_per_second: float = Field(default=30.0, gt=0, le=1000)
    outbox_paid_broadcast: bool = False
    outbox_paid_rate_per_second: float = Field(default=1000.0, gt=0, le=1000)
    outbox_chat_rate_per_second: float = Field(default=1.0, gt=0, le=30)
    outbox_group_rate_per_minute: float = Field(default=20.0, gt=0, le=60)
    outbox_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    followup_lease_seconds: float = Field(default=300.0, ge=1, le=86_400)
    worker_id: str | None = Field(default=None, min_length=1, max_length=64)
    retention_days: int = Field(default=30, ge=2, le=3650)

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token_shape(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not _BOT_TOKEN.match(value):
            # The message must not echo the value: it is a secret.
            raise ValueError("must look like 123456:ABC-DEF... (digits, a colon, the secret)")
        return value

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _secret_shape(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not _WEBHOOK_SECRET.match(value):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("webhook_url", "worker_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value)

    @field_validator("telegram_api_base", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if parts.path in ("", "/") else value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError("is not a known IANA time zone (e.g. Europe/Paris)") from error
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            items = [item.strip() for item in value.replace(";", ",").split(",")]
            try:
                return tuple(int(item) for item in items if item)
            except ValueError as error:
                raise ValueError("must be Telegram user ids separated by commas") from error
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_URL is set")
        return self

    @property
    def emulated(self) -> bool:
        """True when no token is set: the bot runs against its own local emulator."""
        return self.bot_token is None

    @property
    def webhook_path(self) -> str:
        """The path the webhook listens on, taken from WEBHOOK_URL."""
        if not self.webhook_url:
            return "/webhook"
        return urlsplit(self.webhook_url).path or "/"


class SettingsError(Exception):
    """Start-up configuration problem, already phrased for the operator."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one operator-facing line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the environment variable but never its value."""
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        location = [str(part) for part in problem["loc"]]
        message = str(problem["msg"]).removeprefix("Value error, ")
        if location:
            lines.append(f"invalid setting {location[0].upper()}: {message}")
        else:
            lines.append(f"invalid settings: {message}")
    return "; ".join(lines)
