"""Outbox benchmark: the sender's sustained rate against the emulator, and the claim's cost.

    .venv/bin/python -m bench.outbox            # everything, SQLite and PostgreSQL
    .venv/bin/python -m bench.outbox --quick    # smaller runs, for a smoke test

Three measurements per database backend:

* **rate at 30/s**: the emulator enforces Telegram's limits (30 messages a second
  per bot, one a second per chat); the sender drains an outbox of one message per
  citizen. Goal: at least 29 messages a second, nothing lost, no 429;
* **paid broadcast**: the same with ``OUTBOX_PAID_BROADCAST`` (1,000 a second, each
  call flagged ``allow_paid_broadcast``). Goal: at least 950 a second;
* **claim cost**: 100,000 due rows claimed in batches of 1,000 as the sender does,
  each batch then marked attempted and sent, so the timings cover every write a
  message costs the database.

The emulator runs in its own process (as Telegram would be elsewhere), so the
sender's process is measured alone. Alongside, a plain loop of aiogram calls with
no outbox shows what one process can send at all on this machine: the sender
cannot beat it. The machine is shared, so its load average is recorded too.
Results: a table on stdout and ``bench/results/outbox.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.methods import SendMessage
from sqlalchemy import insert

from bench.harness import (
    BACKENDS,
    available_backends,
    describe_machine,
    fresh_database,
    frozen_heap,
    load_average,
    machine,
    table,
    write_results,
)
from bench.processes import cpu_seconds, free_port
from bot.app import Runtime, build_runtime
from bot.clock import SystemClock
from bot.config import Settings
from bot.emulator.client import EmulatorClient, RateLimits
from bot.outbox.sender import OutboxSender
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Citizen, OutboxMessage

TOKEN = "424242:bench-outbox-token_abcdef"
FIRST_USER = 900_000


# --- databases and the emulator -------------------------------------------------------------


@contextlib.asynccontextmanager
async def migrated_database(backend: str) -> AsyncIterator[str]:
    """A fresh database of ``backend`` (see :func:`bench.harness.fresh_database`), migrated."""
    async with fresh_database(backend) as url:
        await upgrade(url)
        yield url


@contextlib.asynccontextmanager
async def emulator_process() -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """The Bot API emulator in its own process; its base URL and the process."""
    port = free_port()
    # Started once, before anything is measured; Popen returns at once.
    process = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "bot.emulator", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with EmulatorClient(url) as client:
            for _ in range(200):
                with contextlib.suppress(OSError, Exception):
                    await client.bot_info()
                    break
                await asyncio.sleep(0.05)  # start-up of a subprocess: nothing to wait on
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- the sender's rate -----------------------------------------------------------------------


@dataclass(slots=True)
class RateResult:
    """One drain of the outbox through the emulator."""

    backend: str
    mode: str
    messages: int
    seconds: float
    sustained_per_second: float
    overall_per_second: float
    busiest_second: int
    rate_limited: int
    lost: int
    duplicates: int
    sender_cpu_ms_per_message: float
    emulator_cpu_ms_per_message: float
    flushes: int
    goal_per_second: float
    load_average: list[float] = field(default_factory=list)


async def _prepare_chats(runtime: Runtime, client: EmulatorClient, users: Sequence[int]) -> None:
    await client.reset()
    await runtime.bot.get_me()
    gate = asyncio.Semaphore(32)

    async def say_hi(user_id: int) -> None:
        async with gate:
            await client.send_text(user_id, "hi", user={"id": user_id, "first_name": "B"})

    await asyncio.gather(*(say_hi(user_id) for user_id in users))


async def _queue_one_each(runtime: Runtime, users: Sequence[int]) -> None:
    clock = runtime.services.clock
    async with runtime.services.database.uow() as uow:
        for user_id in users:
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=user_id, language="en", first_name="B", username=None, now=clock.now()
            )
            method = SendMessage(chat_id=user_id, text=f"news for {user_id}")
            name, payload = (
                type(method).__name__,
                method.model_dump(mode="json", exclude_none=True, exclude_unset=True),
            )
            await uow.repos.outbox.enqueue(
                chat_id=user_id,
                citizen_id=citizen.id,
                kind="broadcast",
                method=name,
                payload=payload,
                now=clock.now(),
            )


def _busiest_second(times: Sequence[float]) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def measure_rate(
    backend: str, url: str, emulator: tuple[str, subprocess.Popen[bytes]], *, paid: bool, count: int
) -> RateResult:
    """Drain ``count`` messages (one per chat) and read the emulator's call log."""
    base, process = emulator
    settings = Settings(database_url=url, outbox_paid_broadcast=paid)
    runtime = build_runtime(settings, api_base=base, token=TOKEN, clock=SystemClock())
    users = list(range(FIRST_USER, FIRST_USER + count))
    try:
        async with EmulatorClient(base) as client:
            await _prepare_chats(runtime, client, users)
            await client.set_rate_limits(RateLimits())
            await _queue_one_each(runtime, users)
            await client.clear_calls()
            sender = OutboxSender(runtime.services, runtime.bot, worker_id=f"bench-{backend}")
            with frozen_heap():
                emulator_cpu, cpu = cpu_seconds(process.pid), time.process_time()
                started = time.perf_counter()
                sent = await sender.drain_once()
                seconds = time.perf_counter() - started
            cpu, emulator_cpu = (
                time.process_time() - cpu,
                cpu_seconds(process.pid) - emulator_cpu,
            )
            calls = await client.calls(method="sendMessage")
        ok = [call for call in calls if call.ok]
        times = sorted(call.time for call in ok)
        distinct = {call.chat_id for call in ok}
        sustained = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        return RateResult(
            backend=backend,
            mode="paid broadcast" if paid else "30/s",
            messages=sent,
            seconds=round(seconds, 2),
            sustained_per_second=round(sustained, 1),
            overall_per_second=round(sent / seconds, 1),
            busiest_second=_busiest_second(times),
            rate_limited=sum(1 for call in calls if call.status == 429),
            lost=count - len(distinct),
            duplicates=len(ok) - len(distinct),
            sender_cpu_ms_per_message=round(1000 * cpu / max(sent, 1), 3),
            emulator_cpu_ms_per_message=round(1000 * emulator_cpu / max(sent, 1), 3),
            flushes=sender.flushes,
            goal_per_second=950.0 if paid else 29.0,
            load_average=load_average(),
        )
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


async def plain_aiogram_ceiling(
    base: str, process: subprocess.Popen[bytes], count: int
) -> dict[str, Any]:
    """aiogram calls in a loop, no outbox, no limits: what one process can send at most."""
    runtime = build_runtime(
        Settings(database_url="sqlite+aiosqlite:///unused.db"),
        api_base=base,
        token=TOKEN,
        clock=SystemClock(),
    )
    users = list(range(FIRST_USER, FIRST_USER + 200))
    try:
        async with EmulatorClient(base) as client:
            await _prepare_chats(runtime, client, users)
            await client.set_rate_limits(None)
        gate = asyncio.Semaphore(16)

        async def one(index: int) -> None:
            async with gate:
                await runtime.bot(SendMessage(chat_id=users[index % len(users)], text="x"))

        emulator_cpu, cpu = cpu_seconds(process.pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one(index) for index in range(count)))
        seconds = time.perf_counter() - started
        return {
            "messages": count,
            "per_second": round(count / seconds, 1),
            "client_cpu_ms_per_message": round(1000 * (time.process_time() - cpu) / count, 3),
            "emulator_cpu_ms_per_message": round(
                1000 * (cpu_seconds(process.pid) - emulator_cpu) / count, 3
            ),
        }
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


# --- the claim's cost ---------------------------------------------------------------------------


@dataclass(slots=True)
class ClaimResult:
    """Claiming (and settling) a backlog of due rows, batch by batch."""

    backend: str
    rows: int
    batch: int
    first_claim_ms: float
    claim_ms_per_batch: float
    claim_rows_per_second: float
    attempt_ms_per_batch: float
    sent_ms_per_batch: float
    cycle_rows_per_second: float


async def _seed_backlog(database: Database, rows: int, now: datetime) -> None:
    """Bulk rows straight into the tables: the benchmark measures claims, not enqueues."""
    citizens = 1000
    async with database.uow() as uow:
        await uow.session.execute(
            insert(Citizen),
            [
                {
                    "telegram_id": FIRST_USER + index,
                    "pseudonym": f"B-{index:08d}",
                    "language": "en",
                    "language_chosen": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for index in range(citizens)
            ],
        )
    chunk = 10_000
    for start in range(0, rows, chunk):
        async with database.uow() as uow:
            await uow.session.execute(
                insert(OutboxMessage),
                [
                    {
                        "chat_id": 1_000_000 + index,
                        "citizen_id": 1 + index % citizens,
                        "kind": "broadcast",
                        "method": "SendMessage",
                        "payload": {"chat_id": 1_000_000 + index, "text": "news"},
                        "priority": 100,
                        "status": "pending",
                        "not_before": now - timedelta(seconds=1),
                        "attempts": 0,
                        "created_at": now,
                    }
                    for index in range(start, min(start + chunk, rows))
                ],
            )


async def measure_claims(backend: str, url: str, *, rows: int, batch: int = 1000) -> ClaimResult:
    """Claim ``rows`` due rows ``batch`` at a time, marking each batch attempted and sent."""
    database = Database(url)
    worker = f"bench-{backend}"
    try:
        await _seed_backlog(database, rows, datetime.now(UTC))
        claim_times: list[float] = []
        attempt_times: list[float] = []
        sent_times: list[float] = []
        claimed_total = 0
        started = time.perf_counter()
        while True:
            now = datetime.now(UTC)
            moment = time.perf_counter()
            async with database.uow() as uow:
                claimed = await uow.repos.outbox.claim_due(
                    worker_id=worker,
                    now=now,
                    lease_until=now + timedelta(minutes=2),
                    limit=batch,
                    per_chat_limit=2,
                )
            claim_times.append(time.perf_counter() - moment)
            ids = [message.id for message in claimed.messages]
            if not ids:
                break
            claimed_total += len(ids)
            moment = time.perf_counter()
            async with database.uow() as uow:
                await uow.repos.outbox.mark_attempts(
                    ids, worker_id=worker, now=now, lease_until=now + timedelta(minutes=2)
                )
            attempt_times.append(time.perf_counter() - moment)
            moment = time.perf_counter()
            async with database.uow() as uow:
                await uow.repos.outbox.mark_sent(
                    dict.fromkeys(ids, 1),
                    worker_id=worker,
                    now=datetime.now(UTC),
                    chat_gap=timedelta(seconds=1),
                    group_gap=timedelta(seconds=3),
                )
            sent_times.append(time.perf_counter() - moment)
        total = time.perf_counter() - started
        if claimed_total != rows:
            raise RuntimeError(f"claimed {claimed_total} of {rows} rows")
        full = claim_times[:-1]  # the last claim found nothing
        return ClaimResult(
            backend=backend,
            rows=rows,
            batch=batch,
            first_claim_ms=round(1000 * claim_times[0], 1),
            claim_ms_per_batch=round(1000 * sum(full) / len(full), 1),
            claim_rows_per_second=round(rows / sum(full)),
            attempt_ms_per_batch=round(1000 * sum(attempt_times) / len(attempt_times), 1),
            sent_ms_per_batch=round(1000 * sum(sent_times) / len(sent_times), 1),
            cycle_rows_per_second=round(rows / total),
        )
    finally:
        await database.dispose()


# --- report ---------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    """The results as text tables."""
    lines = [describe_machine(results["machine"]), ""]
    ceiling = results.get("plain_aiogram")
    if ceiling:
        lines.append(
            f"plain aiogram loop (no outbox, no limits): {ceiling['per_second']}/s, "
            f"{ceiling['client_cpu_ms_per_message']} ms CPU per call in the client"
        )
        lines.append("")
    lines.append(
        table(
            "The sender's rate",
            [
                "backend",
                "mode",
                "messages",
                "seconds",
                "sustained/s",
                "goal/s",
                "busiest 1s",
                "429s",
                "lost",
                "dup",
                "cpu ms/msg",
                "load",
            ],
            [
                [
                    r["backend"],
                    r["mode"],
                    r["messages"],
                    r["seconds"],
                    r["sustained_per_second"],
                    r["goal_per_second"],
                    r["busiest_second"],
                    r["rate_limited"],
                    r["lost"],
                    r["duplicates"],
                    r["sender_cpu_ms_per_message"],
                    "/".join(str(v) for v in r["load_average"][:1]),
                ]
                for r in results["rates"]
            ],
        )
    )
    lines.append("")
    lines.append(
        table(
            "Claiming due rows, then recording the attempt and marking them sent",
            [
                "backend",
                "rows",
                "batch",
                "first claim ms",
                "claim ms/batch",
                "claimed rows/s",
                "attempt ms/batch",
                "sent ms/batch",
                "claim+attempt+sent rows/s",
            ],
            [
                [
                    r["backend"],
                    r["rows"],
                    r["batch"],
                    r["first_claim_ms"],
                    r["claim_ms_per_batch"],
                    r["claim_rows_per_second"],
                    r["attempt_ms_per_batch"],
                    r["sent_ms_per_batch"],
                    r["cycle_rows_per_second"],
                ]
                for r in results["claims"]
            ],
        )
    )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, in order; returns the results."""
    backends, postgres = await available_backends(args.backends)
    skipped = sorted(set(args.backends) - set(backends))
    if skipped:
        print(f"  skipped (not answering): {', '.join(skipped)}", flush=True)
    results: dict[str, Any] = {"machine": machine(postgres), "rates": [], "claims": []}
    async with emulator_process() as emulator:
        results["plain_aiogram"] = await plain_aiogram_ceiling(*emulator, args.paid_messages)
        for backend in backends:
            for paid, count in ((False, args.free_messages), (True, args.paid_messages)):
                async with migrated_database(backend) as url:
                    outcome = await measure_rate(backend, url, emulator, paid=paid, count=count)
                results["rates"].append(asdict(outcome))
                print(f"  {backend} {outcome.mode}: {outcome.sustained_per_second}/s", flush=True)
    for backend in backends:
        async with migrated_database(backend) as url:
            claims = await measure_claims(backend, url, rows=args.claim_rows)
        results["claims"].append(asdict(claims))
        print(f"  {backend} claims: {claims.claim_rows_per_second} rows/s", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, run, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    args = parser.parse_args(argv)
    args.free_messages = 150 if args.quick else 900
    args.paid_messages = 1500 if args.quick else 6000
    args.claim_rows = 10_000 if args.quick else 100_000
    results = asyncio.run(run(args))
    path = write_results("outbox", results)
    print()
    print(report(results))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
