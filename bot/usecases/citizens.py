"""Citizen lifecycle: first contact, language, stopping and resuming messages."""

from __future__ import annotations

import enum
from datetime import datetime

from storage.db import UnitOfWork
from storage.records import CitizenRecord


class Greeting(enum.Enum):
    """Which welcome a /start deserves."""

    NEW = "new"
    RETURNING = "returning"
    RESUMED = "resumed"


async def start_conversation(
    uow: UnitOfWork, citizen: CitizenRecord, *, created: bool, now: datetime
) -> Greeting:
    """Record consent on first contact and resume proactive messages after a /stop."""
    if citizen.consented_at is None:
        await uow.repos.citizens.record_consent(citizen.id, now)
    if citizen.stopped_at is not None:
        await uow.repos.citizens.set_stopped(citizen.id, None)
        return Greeting.RESUMED
    if created or citizen.consented_at is None:
        return Greeting.NEW
    return Greeting.RETURNING


async def stop_messages(uow: UnitOfWork, citizen: CitizenRecord, *, now: datetime) -> None:
    """No proactive message reaches this citizen until they send /start again."""
    await uow.repos.citizens.set_stopped(citizen.id, now)


async def choose_language(
    uow: UnitOfWork, citizen: CitizenRecord, language: str, *, supported: tuple[str, ...]
) -> bool:
    """Remember the citizen's language; False when it is not one we speak."""
    if language not in supported:
        return False
    await uow.repos.citizens.set_language(citizen.id, language)
    return True


async def note_reachability(
    uow: UnitOfWork, telegram_id: int, *, blocked: bool, now: datetime
) -> None:
    """Follow the citizen blocking or unblocking the bot."""
    await uow.repos.citizens.set_unreachable(telegram_id, now if blocked else None)
