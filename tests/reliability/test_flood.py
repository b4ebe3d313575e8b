"""Flood: one user sends 5,000 messages as fast as the bot takes them while 20 others report.

Why webhook mode, and why the flood goes straight to the webhook. Telegram delivers
a webhook's updates in one lane per chat: one chat's updates one after the other,
different chats in parallel. A flooder therefore occupies one connection, and what
its flood can cost the others is exactly the bot's own work per flooded update
(parse, recognise the sender, refuse): the thing under test. In polling mode every
update shares one FIFO queue, so the others' messages would wait behind the 5,000
however cheaply the bot refused them: the measurement would be of Telegram's queue
and of getUpdates transfers, not of the throttle. The flooder posts to the bot's
webhook itself, one request after the other as fast as the bot answers (what
Telegram's lane does), so the emulator in this test's process does not carry a
5,000-update queue whose bookkeeping would slow the others' deliveries and be
counted against the bot. The 20 citizens go through the emulator as usual.

Latency: from the moment a citizen's message is posted to the emulator to the
moment the emulator receives the bot's answer (its call log records when each
Bot API call arrived), for every answer of a full report.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence

import aiohttp
from sqlalchemy import func, select

from storage.db import Database
from storage.models import InboxUpdate, Report
from tests.reliability.conftest import BotFactory
from tests.support.botprocess import free_port
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer

SECRET = "flood_secret-42"
HEADER = "X-Telegram-Bot-Api-Secret-Token"
FLOODER = 740_000
OTHERS = [740_001 + n for n in range(20)]
FLOOD = 5_000
FLOOD_IDS = 2_000_000_000  # far above the emulator's own update ids
BURST = 20
RATE = 1.0
SLOW_DOWN = "You are sending messages very fast"


def flood_update(number: int) -> dict[str, object]:
    """The flooder's message number ``number`` as Telegram would post it."""
    return {
        "update_id": FLOOD_IDS + number,
        "message": {
            "message_id": 1_000_000 + number,
            "date": int(time.time()),
            "chat": {"id": FLOODER, "type": "private", "first_name": "Flo"},
            "from": {"id": FLOODER, "is_bot": False, "first_name": "Flo", "language_code": "en"},
            "text": f"spam {number}",
        },
    }


class Flooder:
    """Posts the flood, one request after the other; counts the answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answered = 0
        self.started = 0.0
        self.finished = 0.0
        self.progress = asyncio.Condition()

    async def run(self) -> None:
        payloads = [flood_update(n) for n in range(FLOOD)]
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as http:
            self.started = time.monotonic()
            for payload in payloads:
                async with http.post(self.url, json=payload, headers={HEADER: SECRET}) as answer:
                    assert answer.status == 200, answer.status
                async with self.progress:
                    self.answered += 1
                    self.progress.notify_all()
            self.finished = time.monotonic()

    async def wait_for(self, answered: int) -> None:
        async with asyncio.timeout(60), self.progress:
            await self.progress.wait_for(lambda: self.answered >= answered)


def answered_at(emulator: EmulatorServer, chat_id: int, since: float) -> float:
    """When the emulator received the bot's first message to ``chat_id`` after ``since``."""
    return min(
        record.time
        for record in emulator.emulator.calls("sendMessage")
        if record.chat_id == chat_id and record.ok and record.time >= since
    )


async def report_timed(
    emulator: EmulatorServer, citizen: Citizen, number: int, latencies: list[float]
) -> None:
    """A whole report (seven answers); the latency of each answer goes to ``latencies``."""
    steps = [
        (citizen.send, "📣 Report an issue", "What would you like to report"),
        (citizen.tap, "💡 Street lighting", "Where is it"),
        (citizen.send, f"{number} Rue Basse", "Can you add a photo"),
        (citizen.send, "Skip ➡️", "describe the problem"),
        (citizen.send, f"Lamp {number} of citizen {citizen.id} is out", "stay anonymous"),
        (citizen.tap, "No", "check your report"),
        (citizen.tap, "✅ Send the report", "Your report number is"),
    ]
    for action, text, expect in steps:
        posted = time.time()
        await action(text, expect=expect)
        latencies.append(answered_at(emulator, citizen.id, posted) - posted)


async def everyone_reports(
    emulator: EmulatorServer, citizens: Sequence[Citizen], round_: int
) -> list[float]:
    latencies: list[float] = []
    await asyncio.gather(
        *(report_timed(emulator, c, round_ * 100 + i, latencies) for i, c in enumerate(citizens))
    )
    return latencies


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def test_a_flood_is_refused_before_storage_and_barely_slows_the_others(
    emulator_server: EmulatorServer, bot_processes: BotFactory, database_url: str
) -> None:
    port = free_port()
    await bot_processes(
        WEB_PORT=str(port),
        WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBHOOK_SECRET=SECRET,
        FLOOD_BURST=str(BURST),
        FLOOD_RATE_PER_SECOND=str(RATE),
    )
    client = emulator_server.client
    citizens = [
        Citizen(client, {"id": user, "first_name": f"O{user}", "language_code": "en"})
        for user in OTHERS
    ]
    # The flooder's chat exists (Telegram would not let the bot write to it otherwise).
    flooder_citizen = Citizen(client, {"id": FLOODER, "first_name": "Flo", "language_code": "en"})
    await flooder_citizen.send("/start", expect="👋")

    # A round to warm up (connections, caches), then the round without the flood.
    await everyone_reports(emulator_server, citizens, 1)
    quiet = await everyone_reports(emulator_server, citizens, 2)

    flooder = Flooder(f"http://127.0.0.1:{port}/hook")
    flooding = asyncio.create_task(flooder.run())
    try:
        await flooder.wait_for(BURST * 5)  # the burst is spent: the flood is being refused
        loud = await everyone_reports(emulator_server, citizens, 3)
        assert not flooding.done(), "the flood ended before the others finished: too short"
        answered_during = flooder.answered
        await asyncio.wait_for(flooding, 120)
    finally:
        flooding.cancel()
    flood_seconds = flooder.finished - flooder.started

    database = Database(database_url)
    try:
        async with asyncio.timeout(30):
            while True:  # the admitted part of the flood is still being handled
                async with database.uow() as uow:
                    stored, pending = (
                        await uow.session.execute(
                            select(
                                func.count(),
                                func.count().filter(InboxUpdate.status != "done"),
                            ).where(InboxUpdate.update_id >= FLOOD_IDS)
                        )
                    ).one()
                    reports = await uow.session.scalar(select(func.count()).select_from(Report))
                if not pending:
                    break
                await asyncio.sleep(0.1)
    finally:
        await database.dispose()
    notices = [
        record
        for record in emulator_server.emulator.calls("sendMessage")
        if record.chat_id == FLOODER and SLOW_DOWN in str(record.params.get("text", ""))
    ]
    ratio = p95(loud) / p95(quiet)
    print(
        f"\nflood: {FLOOD} updates in {flood_seconds:.1f}s ({FLOOD / flood_seconds:.0f}/s),"
        f" {answered_during} during the others' round, {stored} stored;"
        f" others' p95 {p95(quiet) * 1000:.1f} ms quiet, {p95(loud) * 1000:.1f} ms flooded,"
        f" ratio {ratio:.2f}; {len(notices)} slow-down notice(s)"
    )
    assert reports == 3 * len(OTHERS)
    # Refused before any database work: beyond the burst, only what the rate refills.
    assert BURST - 1 <= stored <= BURST + RATE * flood_seconds + 1
    assert len(notices) == 1  # one notice per window (a minute: longer than the flood)
    assert ratio < 1.25
