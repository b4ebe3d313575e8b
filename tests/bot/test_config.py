"""Settings: defaults, normalisation, and one clear line per bad value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.config import Settings, SettingsError, load_settings

SECRET = "super-secret-value_123"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    for name in list(os.environ):
        if name.startswith(("BOT_", "DATABASE_", "WEBHOOK_", "WEB_", "TELEGRAM_", "ADMIN_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_run_embedded_against_the_emulator() -> None:
    settings = load_settings()
    assert settings.emulated
    assert settings.database_url == "sqlite+aiosqlite:///citizenbot.db"
    assert settings.webhook_url is None
    assert settings.admin_ids == ()


def test_database_urls_get_their_async_driver() -> None:
    assert (
        load_settings(database_url="postgresql://u:p@db/x").database_url
        == "postgresql+asyncpg://u:p@db/x"
    )
    assert load_settings(database_url="sqlite:///x.db").database_url == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql://root@localhost/db", "invalid setting DATABASE_URL"),
        ("DATABASE_URL", "not a url", "invalid setting DATABASE_URL"),
        ("DATABASE_URL", "postgresql+psycopg2://h/db", "invalid setting DATABASE_URL"),
        ("WEB_PORT", "70000", "invalid setting WEB_PORT"),
        ("TIMEZONE", "Mars/Olympus", "invalid setting TIMEZONE"),
        ("ADMIN_IDS", "12,abc", "invalid setting ADMIN_IDS"),
        ("DEFAULT_LANGUAGE", "de", "invalid setting DEFAULT_LANGUAGE"),
        ("TELEGRAM_API_BASE", "ftp://x", "invalid setting TELEGRAM_API_BASE"),
        ("BOT_TOKEN", SECRET, "invalid setting BOT_TOKEN"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(expected)
    assert SECRET not in str(caught.value)


def test_a_webhook_needs_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET is required"):
        load_settings()
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    settings = load_settings()
    assert settings.webhook_path == "/hook"
    assert SECRET not in repr(settings)


def test_admin_ids_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "12, 34,56")
    assert load_settings().admin_ids == (12, 34, 56)


def test_a_token_never_appears_in_the_settings_repr() -> None:
    settings = Settings(bot_token="123456:" + SECRET)  # type: ignore[arg-type]
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"DATABASE_URL": "oracle://x/y"}, "invalid setting DATABASE_URL"),
        ({"WEBHOOK_URL": "https://x.example/hook"}, "WEBHOOK_SECRET is required"),
    ],
)
def test_the_command_stops_with_status_2_and_one_line(
    tmp_path: os.PathLike[str], environment: dict[str, str], expected: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WEBHOOK", "DATABASE"))
    }
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
