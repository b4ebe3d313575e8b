"""Managers, subscriptions and runners for digest delivery tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.app import Runtime, build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from bot.digests.schedule import Cadence
from bot.usecases.digests import DigestSettings, save_subscription
from storage.db import Database
from storage.models import OutboxMessage
from storage.records import CitizenRecord
from storage.repositories.digest_subscriptions import DigestSubscriptionRecord
from storage.repositories.staff import MANAGER
from tests.support.botprocess import TEST_TOKEN


@asynccontextmanager
async def instance(
    database_url: str, clock: ManualClock, api_base: str = "http://127.0.0.1:9"
) -> AsyncIterator[Runtime]:
    """One bot instance's services on the database (its own engine); nothing is sent."""
    runtime = build_runtime(
        Settings(database_url=database_url),  # type: ignore[call-arg]
        api_base=api_base,
        token=TEST_TOKEN,
        clock=clock,
    )
    try:
        yield runtime
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


async def add_manager(
    database: Database, telegram_id: int, service_ids: list[int], now: datetime
) -> CitizenRecord:
    """A person who manages these services."""
    async with database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=telegram_id, language="en", first_name="Max", username=None, now=now
        )
        for service_id in service_ids:
            await uow.repos.staff.grant(
                citizen.id, MANAGER, service_id=service_id, by="test", now=now
            )
        return citizen


async def subscribe(
    database: Database,
    citizen: CitizenRecord,
    cadence: Cadence,
    now: datetime,
    service_ids: tuple[int, ...] = (),
) -> DigestSubscriptionRecord:
    """Subscribe ``citizen`` as the /subscribe buttons would."""
    async with database.uow() as uow:
        settings = DigestSettings(cadence=cadence, service_ids=service_ids)
        return await save_subscription(uow, citizen, settings, now=now, change="created")


async def digest_rows(database: Database) -> list[Any]:
    """The digests' outbox rows, in the order they were queued."""
    async with database.uow() as uow:
        result = await uow.session.execute(
            select(
                OutboxMessage.chat_id,
                OutboxMessage.method,
                OutboxMessage.payload,
                OutboxMessage.idempotency_key,
            )
            .where(OutboxMessage.kind == "digest")
            .order_by(OutboxMessage.id)
        )
        return list(result.all())
