"""Proactive messages to one citizen, written to the outbox in the deciding transaction."""

from __future__ import annotations

from datetime import datetime

from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardMarkup

from bot.outbox import enqueue
from storage.db import UnitOfWork
from storage.records import CitizenRecord


def reachable(citizen: CitizenRecord | None) -> bool:
    """Whether the bot may write to the citizen first: not stopped (/stop), not blocked."""
    return (
        citizen is not None
        and citizen.telegram_id is not None
        and citizen.stopped_at is None
        and citizen.unreachable_at is None
    )


async def send_later(
    uow: UnitOfWork,
    citizen: CitizenRecord,
    text: str,
    *,
    kind: str,
    key: str,
    now: datetime,
    markup: InlineKeyboardMarkup | None = None,
) -> bool:
    """Queue one message for the citizen; False when they cannot be written to, or a
    message with this ``key`` was already queued."""
    if not reachable(citizen):
        return False
    assert citizen.telegram_id is not None
    ids = await enqueue(
        uow,
        [SendMessage(chat_id=citizen.telegram_id, text=text, reply_markup=markup)],
        chat_id=citizen.telegram_id,
        citizen_id=citizen.id,
        kind=kind,
        now=now,
        idempotency_key=key,
    )
    return bool(ids)
