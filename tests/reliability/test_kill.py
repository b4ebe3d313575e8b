"""Kill -9: the bot process dies again and again while 50 citizens are reporting.

Each kill comes at a moment drawn from a seeded random generator: after a random
number of the bot's replies since its last start, so it always lands while the
citizens' answers are being stored, handled or answered. After the last restart:
every submitted report exists exactly once, every unfinished dialog takes its next
answer, no update was handled twice, and no reply was lost (a reply the killed bot
had committed comes from the outbox after the restart; one it may already have sent
comes once more, "in doubt").
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from sqlalchemy import func, select

from bot.runtime.outgoing import REPLY_KIND
from storage.db import Database, UnitOfWork
from storage.models import InboxUpdate, OutboxMessage, Report
from storage.repositories.outbox import IN_DOUBT
from tests.reliability.conftest import BotFactory
from tests.reliability.reportflow import (
    CONFIRM,
    NOT_STARTED,
    QUESTIONS,
    SENT,
    BotLife,
    ReportingCitizen,
    advance_all,
    step_shown,
)
from tests.support.botprocess import BotProcess
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer

SEED = 20260107
CITIZENS = 50
KILLS = 10
FIRST_USER = 730_000
# One name across restarts, as a deployment keeps it: a restarted bot takes back the
# replies its previous life committed but may not have sent, at once.
WORKER = "kill-test"


def plan(rng: random.Random) -> tuple[list[int], list[int]]:
    """Where each citizen stands when the killing starts, and where it stops.

    Every fifth citizen stops before sending its report (an unfinished dialog);
    the others send it. Starting points cover every step of the flow.
    """
    starts, targets = [], []
    for number in range(CITIZENS):
        start = number % CONFIRM  # NOT_STARTED .. ANONYMOUS, then CONFIRM for some below
        if number % 5 == 0:
            target = rng.randint(max(start, 1), CONFIRM)
        else:
            start = rng.choice([start, min(start + 1, CONFIRM)])
            target = SENT
        starts.append(start)
        targets.append(target)
    return starts, targets


async def replies_after(emulator: EmulatorServer, since: int, count: int) -> None:
    """Wait until the bot has sent ``count`` messages after call number ``since``."""
    cursor = since
    for _ in range(count):
        call = await emulator.client.wait_for_call("sendMessage", since=cursor, timeout=60)
        cursor = call.seq


def last_call(emulator: EmulatorServer) -> int:
    """The sequence number of the newest call the emulator logged."""
    return max((record.seq for record in emulator.emulator.calls()), default=0)


async def reply_chats(uow: UnitOfWork, error: str) -> list[int]:
    """The chats of kept replies whose last error starts with ``error``, one per reply."""
    statement = select(OutboxMessage.chat_id).where(
        OutboxMessage.kind == REPLY_KIND, OutboxMessage.last_error.startswith(error)
    )
    return list((await uow.session.scalars(statement)).all())


async def test_reports_survive_repeated_sigkills_mid_flow(
    emulator_server: EmulatorServer, bot_processes: BotFactory, database_url: str
) -> None:
    rng = random.Random(SEED)
    client = emulator_server.client
    life = BotLife()
    citizens = [
        ReportingCitizen(
            Citizen(
                client,
                {"id": FIRST_USER + n, "first_name": f"C{n}", "language_code": "en"},
            ),
            number=n,
            life=life,
        )
        for n in range(CITIZENS)
    ]
    starts, targets = plan(rng)
    assert set(starts) == set(range(NOT_STARTED, CONFIRM + 1))

    bot: BotProcess = await bot_processes(WORKER_ID=WORKER)
    life.up()
    await advance_all(citizens, starts, concurrency=10)
    assert sum(c.nudges for c in citizens) == 0  # nothing was killed yet

    # Ten citizens answer at a time (the others wait mid-flow): each restart handles
    # the answers sent while the bot was down, uncounted by the reply-based kill
    # points, and with all fifty answering those bursts left too few steps for ten
    # kills (after ten kills 57-79 of 193 steps remained; with ten at a time, 133-152).
    walking = asyncio.create_task(advance_all(citizens, targets, concurrency=10))
    kills = 0
    try:
        for _ in range(KILLS):
            replies = asyncio.create_task(
                replies_after(emulator_server, last_call(emulator_server), rng.randint(1, 8))
            )
            await asyncio.wait({replies, walking}, return_when=asyncio.FIRST_COMPLETED)
            if walking.done():
                replies.cancel()
                walking.result()  # the citizens' failure, if they failed
                raise AssertionError(f"the citizens finished after only {kills} kills")
            replies.result()
            life.down()
            assert await bot.kill() == -9
            kills += 1
            bot = await bot_processes(WORKER_ID=WORKER)
            life.up()
        try:
            await asyncio.wait_for(walking, 180)
        except TimeoutError:
            behind = [
                f"citizen {c.number} at step {c.known} (target {t}), {c.nudges} nudges"
                for c, t in zip(citizens, targets, strict=True)
                if c.known < t
            ]
            tail = "\n".join(bot.output[-30:])
            raise AssertionError(
                f"the citizens did not finish after {kills} kills:\n"
                + "\n".join(behind)
                + f"\nthe bot's last output:\n{tail}"
            ) from None
    finally:
        walking.cancel()
    assert kills >= 10

    # Unfinished dialogs continue where they stopped: the next answer is taken.
    unfinished = [(c, t) for c, t in zip(citizens, targets, strict=True) if t < SENT]
    for citizen, target in unfinished:
        history = await client.history(citizen.citizen.id)
        assert step_shown(history.messages) == target
    await asyncio.gather(*(c.answer(t, timeout=30) for c, t in unfinished))

    # The report is sent by those who went all the way, and by those whose next
    # answer, just now, was the confirmation.
    finishers = [c for c, t in zip(citizens, targets, strict=True) if t >= CONFIRM]
    database = Database(database_url)
    try:
        async with database.uow() as uow:
            descriptions = Counter((await uow.session.scalars(select(Report.description))).all())
            inbox = dict(
                (
                    await uow.session.execute(
                        select(InboxUpdate.status, func.count()).group_by(InboxUpdate.status)
                    )
                ).all()
            )
            attempts = set((await uow.session.scalars(select(InboxUpdate.attempts))).all())
            # Replies a killed bot had committed and perhaps sent: each resent once.
            in_doubt = Counter(await reply_chats(uow, IN_DOUBT))
            # Replies a second kill caught in doubt again: the outbox does not send those a
            # third time (its rule against duplicates), so they may never arrive.
            abandoned = set(await reply_chats(uow, IN_DOUBT + " twice"))
    finally:
        await database.dispose()
    nudges = sum(c.nudges for c in citizens)
    late = sum(c.confirmation_lost for c in citizens)
    tried_again = sum(c.tried_again for c in citizens)
    # A kill between an answer's commit and the bot's reply delays the reply: the
    # restarted bot sends it from the outbox, where it was committed with the answer.
    # Some come after the citizen, tired of waiting, nudged; none is lost.
    print(
        f"\n{kills} kills, {nudges} nudges ({tried_again} taps on Try again),"
        f" {late} confirmations came after a nudge,"
        f" {in_doubt.total()} replies resent in doubt ({len(abandoned)} twice), inbox {inbox}"
    )
    for citizen in finishers:
        if citizen.citizen.id in abandoned:
            continue
        await client.wait_until(
            citizen.citizen.id,
            lambda history: any(QUESTIONS[SENT] in m.content for m in history.bot_messages),
            timeout=30,
            description=f"citizen {citizen.number}'s confirmation",
        )

    # Every submitted report exists exactly once.
    assert descriptions == Counter(c.description for c in finishers)
    # Every update the citizens caused was stored, and handled exactly once.
    assert inbox == {"done": sum(c.updates for c in citizens)}
    assert attempts == {1}
    # No answer was handled twice: a second run would have asked a question again,
    # so no chat shows more questions than the updates its citizen sent.
    confirmations = Counter(
        call.chat_id
        for call in emulator_server.emulator.calls("sendMessage")
        if call.ok and QUESTIONS[SENT] in str(call.params.get("text", ""))
    )
    never = [c.number for c in finishers if confirmations[c.citizen.id] == 0]
    print(f"confirmations never sent (caught in doubt twice): {never}")
    for citizen in citizens:
        history = await client.history(citizen.citizen.id)
        questions = [
            m
            for m in history.bot_messages
            if any(question in m.content for question in QUESTIONS.values())
        ]
        # A reply resent in doubt may show a question twice; nothing else may.
        resent = in_doubt[citizen.citizen.id]
        assert len(questions) <= citizen.updates + resent, (citizen.number, citizen.updates)
        received = confirmations[citizen.citizen.id]
        if citizen in finishers:
            least = 0 if citizen.citizen.id in abandoned else 1
            assert least <= received <= 1 + resent, citizen.number
        else:
            assert received == 0, citizen.number
