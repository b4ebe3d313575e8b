"""Send failures: Telegram refuses, fails and hangs up while follow-ups go out.

Many volunteers have a shift reminder due and a notification queued. While the
follow-up runner turns the reminders into outbox messages and the sender delivers
them, the emulator answers with a 429 storm (with retry_after), 5xx errors and
dropped connections, and some volunteers have blocked the bot (403). Time is a
ManualClock, moved on to make retries due; 429 pauses are real (a second).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.emulator.client import FaultRule
from bot.followups.runner import FollowUpRunner
from bot.followups.schedule import schedule_signup
from bot.outbox.sender import OutboxSender
from storage.models import Citizen, FollowUp, OutboxMessage
from tests.followups.support import add_opportunity, queued
from tests.outbox.conftest import OutboxWorld
from tests.support.emulator import EmulatorServer

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SHIFT = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
VOLUNTEERS = 120


async def test_storms_errors_hangups_and_blocks_lose_nothing_and_send_nothing_twice(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    world = OutboxWorld(database_url, emulator_server)
    try:
        runtime = await world.runtime(outbox_rate_per_second=200)
        database = runtime.services.database
        client = world.client
        people = await world.citizens(VOLUNTEERS)
        opportunity = await add_opportunity(
            database, code="storm-day", starts_at=SHIFT, slots=VOLUNTEERS
        )
        async with database.uow() as uow:
            for _, citizen_id in people:
                signup = await uow.repos.volunteering.signup(opportunity.id, citizen_id, now=START)
                assert signup.signup_id is not None
                await schedule_signup(
                    uow,
                    signup_id=signup.signup_id,
                    citizen_id=citizen_id,
                    starts_at=opportunity.starts_at,
                    ends_at=opportunity.ends_at,
                    now=START,
                    zone=UTC,
                    events=("shift_start",),
                )
        await world.enqueue(
            [(chat, citizen, [f"Notice for volunteer {chat}"]) for chat, citizen in people]
        )
        blocked = {chat for chat, _ in people[::10]}
        for chat in blocked:
            await client.block(chat)

        # A storm for everyone first, then trouble for one chat in five.
        await client.add_fault(
            FaultRule(method="sendMessage", error_code=429, retry_after=1, times=25)
        )
        troubled = [chat for chat, _ in people[1::5] if chat not in blocked]
        for index, chat in enumerate(troubled):
            if index % 3 == 0:
                rule = FaultRule(method="sendMessage", chat_id=chat, error_code=502, times=2)
            elif index % 3 == 1:
                rule = FaultRule(
                    method="sendMessage",
                    chat_id=chat,
                    error_code=500,
                    description="Internal Server Error",
                )
            else:
                # Hangs, then hangs up before anything took effect: the bot cannot
                # know, so the message is in doubt and resent once.
                rule = FaultRule(
                    method="sendMessage", chat_id=chat, delay=0.2, drop_connection=True
                )
            await client.add_fault(rule)

        world.clock.set(SHIFT - timedelta(hours=24))
        runner = FollowUpRunner(runtime.services, worker_id="runner", batch_size=25)
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="sender", backoff=1.0)
        assert await runner.run_due() == VOLUNTEERS
        for _ in range(40):
            await sender.drain_once()
            async with database.uow() as uow:
                unsettled = await uow.session.scalar(
                    select(OutboxMessage.id).where(
                        OutboxMessage.status.not_in(("sent", "dropped", "failed"))
                    )
                )
            if unsettled is None:
                break
            world.advance(10)  # retries and the next message of a chat become due
        else:
            raise AssertionError("the outbox did not settle")

        rows = await queued(database)
        async with database.uow() as uow:
            unreachable = set(
                (
                    await uow.session.scalars(
                        select(Citizen.telegram_id).where(Citizen.unreachable_at.is_not(None))
                    )
                ).all()
            )
            followups = Counter(
                (
                    await uow.session.execute(
                        select(FollowUp.status, FollowUp.outcome).where(
                            FollowUp.rule == "shift_reminder_24h"
                        )
                    )
                ).all()
            )
    finally:
        await world.close()

    statuses = Counter(row.status for row in rows)
    calls = await client.calls(method="sendMessage")
    print(
        f"\n{len(rows)} outbox rows {dict(statuses)}; follow-ups {dict(followups)};"
        f" sender {sender.counters}; emulator answers"
        f" {dict(Counter(call.status for call in calls))}"
    )
    # Each fault really happened, and the sender saw it.
    assert {429, 500, 502} <= {call.status for call in calls}
    assert any(call.dropped for call in calls) or sender.counters.in_doubt > 0
    assert sender.counters.rate_limited > 0 and sender.counters.retried > 0

    # Blocked volunteers: marked unreachable, their messages dropped, nothing received.
    assert unreachable == blocked
    assert all(row.status == "dropped" for row in rows if row.chat_id in blocked)
    # Everyone else got each of their messages exactly once.
    expected: dict[int, Counter[str]] = defaultdict(Counter)
    for row in rows:
        if row.chat_id not in blocked:
            assert row.status == "sent", row
            expected[row.chat_id][row.text] += 1
    eligible = {chat for chat, _ in people} - blocked
    assert set(expected) == eligible
    for chat in eligible:
        history = await client.history(chat)
        received = Counter(message.content for message in history.bot_messages)
        assert sum(received.values()) == 2, (chat, received)  # the notice and the reminder
        assert received == Counter(
            text.replace("<b>", "").replace("</b>", "") for text in expected[chat].elements()
        ), chat
    assert sum(followups.values()) == VOLUNTEERS
