"""Citizens: first contact, returning contact, language and reachability."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.repositories.citizens import new_pseudonym

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_first_contact_creates_a_citizen_with_a_pseudonym(database: Database) -> None:
    async with database.uow() as uow:
        citizen, created = await uow.repos.citizens.ensure(
            telegram_id=77, language="fr", first_name="Zoé", username="zoe", now=NOW
        )
    assert created
    assert citizen.language == "fr" and not citizen.language_chosen
    assert citizen.pseudonym.startswith("C-") and len(citizen.pseudonym) == 10
    async with database.uow() as uow:
        again, created = await uow.repos.citizens.ensure(
            telegram_id=77, language="en", first_name="Zoé B", username=None, now=NOW
        )
    assert not created
    assert again.id == citizen.id and again.pseudonym == citizen.pseudonym
    assert again.language == "fr"  # Telegram's code does not override a known citizen
    assert again.first_name == "Zoé B" and again.username is None


async def test_concurrent_first_contacts_make_one_citizen(database: Database) -> None:
    async def contact() -> int:
        async with database.uow() as uow:
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=5, language="en", first_name="A", username=None, now=NOW
            )
            return citizen.id

    ids = await asyncio.gather(*(contact() for _ in range(5)))
    assert len(set(ids)) == 1


async def test_consent_keeps_its_first_time_and_language_is_remembered(database: Database) -> None:
    async with database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=8, language="en", first_name="B", username=None, now=NOW
        )
        await uow.repos.citizens.record_consent(citizen.id, NOW)
        await uow.repos.citizens.record_consent(citizen.id, NOW + timedelta(days=1))
        await uow.repos.citizens.set_language(citizen.id, "fr")
    async with database.uow() as uow:
        stored = await uow.repos.citizens.by_telegram_id(8)
    assert stored is not None
    assert stored.consented_at == NOW
    assert stored.language == "fr" and stored.language_chosen


async def test_stop_and_unreachable_are_recorded_and_cleared(database: Database) -> None:
    async with database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=9, language="en", first_name="C", username=None, now=NOW
        )
        await uow.repos.citizens.set_stopped(citizen.id, NOW)
        await uow.repos.citizens.set_unreachable(9, NOW)
    async with database.uow() as uow:
        stored = await uow.repos.citizens.by_id(citizen.id)
        assert stored is not None and stored.stopped_at == NOW and stored.unreachable_at == NOW
        await uow.repos.citizens.set_stopped(citizen.id, None)
        await uow.repos.citizens.set_unreachable(9, None)
    async with database.uow() as uow:
        stored = await uow.repos.citizens.by_id(citizen.id)
    assert stored is not None and stored.stopped_at is None and stored.unreachable_at is None


async def test_a_citizen_who_writes_is_reachable_again(database: Database) -> None:
    # E.g. a manager granted by id before they ever wrote: the bot could not deliver
    # its first message; their first /start must not leave them unreachable.
    async with database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=10, language="en", first_name="C", username=None, now=NOW
        )
        await uow.repos.citizens.set_unreachable(10, NOW)
    async with database.uow() as uow:
        again, created = await uow.repos.citizens.ensure(
            telegram_id=10, language="en", first_name="C", username=None, now=NOW
        )
        assert not created and again.unreachable_at is None
        assert (await uow.repos.citizens.by_id(citizen.id)) == again
    async with database.uow() as uow:
        stored = await uow.repos.citizens.by_telegram_id(10)
    assert stored is not None and stored.unreachable_at is None


def test_pseudonyms_draw_every_readable_letter_evenly() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # no I, L, O, U: read aloud on the phone
    pseudonyms = [new_pseudonym() for _ in range(2_000)]
    assert all(re.fullmatch(f"C-[{alphabet}]{{8}}", each) for each in pseudonyms)
    assert len(set(pseudonyms)) == len(pseudonyms)
    letters = Counter("".join(each[2:] for each in pseudonyms))
    # 16,000 letters: 500 of each expected; a letter drawn half as often is a bias.
    assert set(letters) == set(alphabet)
    assert min(letters.values()) > 350 and max(letters.values()) < 650
