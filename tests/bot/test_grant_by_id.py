"""Granting a role by Telegram user id keeps what is known of the person."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.usecases.staff import GrantResult, grant_role
from storage.db import Database

NOW = datetime(2026, 11, 1, 9, tzinfo=UTC)


async def test_a_known_person_granted_by_id_keeps_name_and_username(database: Database) -> None:
    async with database.uow() as uow:
        admin, _ = await uow.repos.citizens.ensure(
            telegram_id=1, language="en", first_name="Ada", username="ada", now=NOW
        )
        await uow.repos.citizens.ensure(
            telegram_id=2, language="fr", first_name="Max", username="max_mgr", now=NOW
        )
        outcome = await grant_role(uow, admin, "2", "admin", None, now=NOW)
        person = await uow.repos.citizens.by_telegram_id(2)
    assert outcome.result is GrantResult.GRANTED
    assert person is not None
    assert (person.first_name, person.username, person.language) == ("Max", "max_mgr", "fr")
