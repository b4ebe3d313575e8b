"""What a finished flow tells the citizen is written to the outbox with the update's
work: a crash or a failed call after the commit delays it, never loses it
(bot/runtime/outgoing.py). The rating flow's last answer is the finishing update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot
from sqlalchemy import select

from bot.app import Runtime
from bot.clock import ManualClock
from bot.emulator.client import FaultRule
from bot.outbox.sender import OutboxSender
from bot.runtime.outgoing import REPLY_KIND, Outgoing, Settlement
from storage.models import Citizen as CitizenRow
from storage.models import OutboxMessage
from storage.repositories.outbox import IN_DOUBT, RETRY, SENT
from tests.e2e.test_journeys import TEXTS
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

USER = {"id": 9701, "first_name": "Rae", "language_code": "en"}
T = TEXTS["en"]
COMMENT = "Quick and kind"
LEASE = 120.0


@pytest.fixture
async def bot(emulator_server: EmulatorServer, database_url: str) -> AsyncIterator[Runtime]:
    async with running_bot(
        database_url,
        emulator_server.url,
        ManualClock(),
        worker_id="replies-test",
        outbox_lease_seconds=LEASE,
    ) as runtime:
        yield runtime


async def reply_rows(runtime: Runtime) -> list[OutboxMessage]:
    async with runtime.services.database.uow() as uow:
        rows = await uow.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == REPLY_KIND).order_by(OutboxMessage.id)
        )
        return list(rows)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the database until ``check()`` (the bookkeeping follows the send), 10 s at most."""
    async with asyncio.timeout(10):
        while not await check():  # noqa: ASYNC110 - no event exists for a row's state
            await asyncio.sleep(0.02)


async def wait_for_rows(
    runtime: Runtime, predicate: Callable[[list[OutboxMessage]], bool]
) -> list[OutboxMessage]:
    """The reply rows, once ``predicate(rows)`` holds."""

    async def check() -> bool:
        return predicate(await reply_rows(runtime))

    await until(check)
    return await reply_rows(runtime)


async def rate_up_to_the_last_answer(emulator_server: EmulatorServer) -> None:
    """The rating flow, answered up to its last question (nothing kept so far)."""
    citizen = Citizen(emulator_server.client, USER)
    await citizen.send(T["rate"], expect=T["which_service"])
    await citizen.tap(T["roads_service"], expect=T["overall"])
    await citizen.tap("4", expect=T["more"])
    await citizen.tap(T["no_thanks"], expect=T["anything_else"])


async def last_answer(emulator_server: EmulatorServer) -> None:
    """Send the last answer without waiting for the bot's thanks."""
    await emulator_server.client.send_text(USER["id"], COMMENT, user=USER)


async def finish_meeting(emulator_server: EmulatorServer, fault: FaultRule) -> None:
    """Rate, with ``fault`` waiting for the bot's sendMessage calls to the citizen."""
    await rate_up_to_the_last_answer(emulator_server)
    await emulator_server.client.add_fault(fault)
    await last_answer(emulator_server)


async def thanks(emulator_server: EmulatorServer) -> int:
    """How many times the citizen was thanked for the rating."""
    calls = await emulator_server.client.calls(method="sendMessage")
    return sum(1 for call in calls if call.ok and T["thanks"] in str(call.params.get("text")))


async def test_a_finished_flow_s_reply_is_kept_until_sent_then_deleted(
    bot: Runtime, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rate_up_to_the_last_answer(emulator_server)
    kept: list[int] = []
    flush = Outgoing.flush

    async def watching(self: Outgoing, bot_: Bot) -> Settlement:
        kept.extend(self._kept.values())
        return await flush(self, bot_)

    monkeypatch.setattr(Outgoing, "flush", watching)
    await Citizen(emulator_server.client, USER).send(COMMENT, expect=T["thanks"])
    # Kept in the update's transaction (the thanks, with the menu), deleted once sent.
    assert len(kept) == 1
    assert await wait_for_rows(bot, lambda rows: rows == []) == []
    assert await thanks(emulator_server) == 1


async def test_a_question_is_not_kept(
    bot: Runtime, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    keep = Outgoing.keep

    async def counting(self: Outgoing, *args: Any, **kwargs: Any) -> None:
        await keep(self, *args, **kwargs)
        calls.append(len(self._kept))

    monkeypatch.setattr(Outgoing, "keep", counting)
    await rate_up_to_the_last_answer(emulator_server)
    assert len(calls) == 4 and set(calls) == {0}


async def test_a_reply_that_meets_a_server_error_is_retried_by_the_outbox(
    bot: Runtime, emulator_server: EmulatorServer
) -> None:
    await finish_meeting(
        emulator_server,
        FaultRule(method="sendMessage", chat_id=USER["id"], error_code=502, times=1),
    )
    [row] = await wait_for_rows(bot, lambda rows: [r.status for r in rows] == [RETRY])
    assert row.attempts == 1
    assert await thanks(emulator_server) == 0

    sender = OutboxSender(bot.services, bot.bot, worker_id="replies-test")
    assert isinstance(bot.services.clock, ManualClock)
    bot.services.clock.advance(timedelta(seconds=5))
    assert await sender.drain_once() == 1
    assert await thanks(emulator_server) == 1


async def test_flood_control_hands_the_reply_to_the_outbox_without_counting_an_attempt(
    bot: Runtime, emulator_server: EmulatorServer
) -> None:
    start = bot.services.clock.now()
    await finish_meeting(
        emulator_server,
        FaultRule(method="sendMessage", chat_id=USER["id"], error_code=429, retry_after=7),
    )
    [row] = await wait_for_rows(bot, lambda rows: [r.status for r in rows] == [RETRY])
    assert row.attempts == 0
    assert row.not_before >= start + timedelta(seconds=7)


async def test_a_blocked_chat_is_marked_unreachable_and_keeps_no_reply(
    bot: Runtime, emulator_server: EmulatorServer
) -> None:
    await finish_meeting(
        emulator_server,
        FaultRule(method="sendMessage", chat_id=USER["id"], error_code=403, times=5),
    )

    async def unreachable() -> bool:
        async with bot.services.database.uow() as uow:
            return (
                await uow.session.scalar(
                    select(CitizenRow.unreachable_at).where(CitizenRow.telegram_id == USER["id"])
                )
            ) is not None

    await until(unreachable)
    assert await wait_for_rows(bot, lambda rows: rows == []) == []


async def test_a_crash_between_the_commit_and_the_send_delays_the_reply_but_keeps_it(
    bot: Runtime, emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await rate_up_to_the_last_answer(emulator_server)

    async def dies_before_sending(self: Outgoing, _bot: Bot) -> Settlement:
        return Settlement()  # the process "died" after the commit: nothing sent or settled

    monkeypatch.setattr(Outgoing, "flush", dies_before_sending)
    await last_answer(emulator_server)
    [row] = await wait_for_rows(bot, lambda rows: len(rows) == 1)
    assert (row.claimed_by, row.attempts) == ("replies-test", 1)
    monkeypatch.undo()
    assert await thanks(emulator_server) == 0

    # Another instance finds the lease run out and sends the reply, once, as in doubt.
    sender = OutboxSender(bot.services, bot.bot, worker_id="other")
    assert isinstance(bot.services.clock, ManualClock)
    bot.services.clock.advance(timedelta(seconds=LEASE + 1))
    assert await sender.drain_once() == 1
    assert await thanks(emulator_server) == 1
    [row] = await reply_rows(bot)
    assert row.status == SENT and (row.last_error or "").startswith(IN_DOUBT)


async def test_a_reply_not_kept_waits_out_one_429_and_is_sent(
    bot: Runtime, emulator_server: EmulatorServer
) -> None:
    await emulator_server.client.add_fault(
        FaultRule(method="sendMessage", chat_id=USER["id"], error_code=429, retry_after=1)
    )
    # A question is not kept in the outbox: it is sent again by the update itself.
    await Citizen(emulator_server.client, USER).send("/start", expect="Hello Rae")
    assert await reply_rows(bot) == []
