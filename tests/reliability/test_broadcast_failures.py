"""Send failures during a broadcast: nothing lost, nothing sent twice, counts that add up.

Three hundred citizens said /start. An administrator composes a broadcast to
everyone in chat and sends it. While the outbox delivers it, the emulator answers
with a 429 storm (with retry_after), 5xx errors, and connections that hang and
drop; some citizens blocked the bot without the bot knowing (403 on the first
send) and some block it while the broadcast goes out (a my_chat_member update and
403s). Time is a ManualClock moved on to make paced rows and retries due; 429
pauses are real (a second each).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.emulator.client import FaultRule
from bot.outbox.sender import OutboxSender
from bot.usecases.broadcasts import BroadcastMonitor
from storage.models import Broadcast
from storage.models import Citizen as CitizenRow
from storage.repositories.broadcasts import DONE
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9_801, "first_name": "Ada", "language_code": "en"}
FIRST_USER = 750_000
CITIZENS = 300
TEXT = "The town hall opens late on Thursday"
FORBIDDEN = "Forbidden: bot was blocked by the user"


async def test_a_broadcast_through_storms_errors_hangups_and_blocks_reaches_each_citizen_once(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    client = emulator_server.client
    settings = {"admin_ids": (ADMIN["id"],), "outbox_rate_per_second": 200}
    async with running_bot(database_url, emulator_server.url, clock, **settings) as runtime:
        services = runtime.services
        admin = Citizen(client, ADMIN)
        await admin.send("/start", expect="Hello Ada")
        people = [FIRST_USER + n for n in range(CITIZENS)]
        gate = asyncio.Semaphore(20)

        async def say_start(user_id: int) -> None:
            async with gate:
                citizen = Citizen(client, {"id": user_id, "first_name": f"C{user_id}"})
                await citizen.send("/start", expect="Hello", timeout=120)

        await asyncio.gather(*(say_start(user_id) for user_id in people))

        await admin.send("/broadcast", expect="Who should receive")
        prompt = await admin.tap("Everyone", expect="Reply to this message")
        sent = await client.send_text(
            ADMIN["id"], TEXT, user=admin.user, reply_to=prompt.message_id
        )
        audience = CITIZENS + 1  # the administrator too
        preview = await client.wait_for_bot_message(
            ADMIN["id"],
            after=sent.message_id,
            predicate=lambda m: f"Send to {audience}" in m.button_texts,
        )
        assert preview.message_id
        await admin.tap(f"Send to {audience}", expect=f"Sending to {audience}")

        # Blocked without the bot knowing: 403 at the first send.
        silent_blockers = set(people[::15])
        for chat in silent_blockers:
            await client.add_fault(
                FaultRule(method="sendMessage", chat_id=chat, error_code=403, description=FORBIDDEN)
            )
        # Blocking now: the bot hears of it by an update, or by a 403, whichever is first.
        late_blockers = set(people[7::30])
        for chat in late_blockers:
            await client.block(chat)
        blocked = silent_blockers | late_blockers
        # A storm for everyone first, then trouble for one chat in six.
        await client.add_fault(
            FaultRule(method="sendMessage", error_code=429, retry_after=1, times=4)
        )
        troubled = [chat for chat in people[1::6] if chat not in blocked]
        for index, chat in enumerate(troubled):
            if index % 3 == 0:
                rule = FaultRule(method="sendMessage", chat_id=chat, error_code=502, times=2)
            elif index % 3 == 1:
                rule = FaultRule(method="sendMessage", chat_id=chat, error_code=500)
            else:
                # Hangs, then hangs up before anything took effect: in doubt, resent once.
                rule = FaultRule(
                    method="sendMessage", chat_id=chat, delay=0.2, drop_connection=True
                )
            await client.add_fault(rule)

        sender = OutboxSender(services, runtime.bot, worker_id="broadcast", backoff=1.0)
        monitor = BroadcastMonitor(services, runtime.bot)
        for _ in range(200):
            await sender.drain_once()
            if await monitor.sweep():
                break
            clock.advance(timedelta(seconds=5))  # paced rows and retries become due
        else:
            raise AssertionError("the broadcast did not finish")
        for _ in range(5):  # the final count goes to the administrator through the outbox
            await sender.drain_once()
            clock.advance(timedelta(seconds=5))
        await asyncio.wait_for(runtime.inbox.processor.join(), 60)

        async with services.database.uow() as uow:
            (broadcast,) = (await uow.session.scalars(select(Broadcast))).all()
            unreachable = set(
                (
                    await uow.session.scalars(
                        select(CitizenRow.telegram_id).where(CitizenRow.unreachable_at.is_not(None))
                    )
                ).all()
            )

    calls = await client.calls(method="sendMessage")
    print(
        f"\nbroadcast {broadcast.progress}; sender {sender.counters}; emulator answers"
        f" {dict(Counter(call.status for call in calls))}"
    )
    # Each kind of trouble really happened.
    assert {403, 429, 500, 502} <= {call.status for call in calls}
    assert any(call.dropped for call in calls)
    assert sender.counters.rate_limited > 0 and sender.counters.in_doubt > 0

    eligible = (set(people) | {ADMIN["id"]}) - blocked
    delivered = Counter(
        call.chat_id for call in calls if call.ok and call.params.get("text") == TEXT
    )
    assert set(delivered) == eligible
    assert delivered.pop(ADMIN["id"]) == 2  # the preview, then the broadcast
    assert set(delivered.values()) == {1}
    for chat in sorted(delivered)[::10]:  # what the citizens see agrees with the log
        history = await client.history(chat)
        assert [m.content for m in history.bot_messages].count(TEXT) == 1, chat
    assert unreachable == blocked

    assert broadcast.status == DONE and broadcast.total == audience
    assert broadcast.progress == {
        "delivered": len(eligible),
        "blocked": len(blocked),
        "skipped": 0,
        "failed": 0,
        "waiting": 0,
    }
    admin_texts = [m.content for m in (await client.history(ADMIN["id"])).bot_messages]
    assert any(f"{len(eligible)} of {audience} delivered" in text for text in admin_texts)
