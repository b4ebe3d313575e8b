"""Where one update's time goes in citizenbot: a diagnostic, not a benchmark.

Citizens complete the report flow one at a time (no queueing) through the same path
as ``bench.dialogs``; timers wrapped around the product's stages (in this process
only: no product file changes) add up wall time and main-thread CPU per update, and
engine events count the SQL statements by kind. aiogram runs every synchronous
filter (``F.…`` magic filters) in a worker thread through ``asyncio.to_thread``; those
hops are counted too.

    python -m bench.breakdown [--backend sqlite] [--citizens 60]

Stages nest (a line's time includes the indented lines under it), and a stage's CPU
is the main thread's between its start and its end, so it includes the event loop's
own work while it waits.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import aiogram.dispatcher.event.handler as aiogram_handler
from aiogram import Dispatcher
from sqlalchemy import event

import bot.handlers.dialog as dialog_handlers
from bench import fakebot
from bench.dialogs import (
    CitizenbotTarget,
    drive,
    open_target,
    report_journey,
)
from bench.fakebot import UpdateFactory
from bench.harness import (
    BACKENDS,
    available_backends,
    describe_machine,
    frozen_heap,
    machine,
    table,
    write_results,
)
from bot.conversation.calls import CallRunner
from bot.conversation.catalog import FlowCatalog
from bot.conversation.service import Conversations
from bot.runtime.inbox import Inbox
from bot.runtime.middlewares import CitizenMiddleware, UnitOfWorkMiddleware
from bot.runtime.outgoing import Outgoing
from dialogs import Engine
from storage.db import UnitOfWork
from storage.repositories.citizens import CitizenRepository
from storage.repositories.inbox import InboxRepository
from storage.repositories.sessions import SessionRepository

NAME = "breakdown"

# (owner, attribute, label): indentation in the label shows the nesting.
STAGES: tuple[tuple[Any, str, str], ...] = (
    (CitizenbotTarget, "deliver", "update, from receipt to handled"),
    (Inbox, "receive", "  Inbox.receive: handle now, or store and queue"),
    (InboxRepository, "store", "    InboxRepository.store (own transaction)"),
    (Inbox, "handle", "    Inbox.handle: parse + dispatch"),
    (Dispatcher, "feed_update", "      Dispatcher.feed_update"),
    (UnitOfWorkMiddleware, "__call__", "        UnitOfWorkMiddleware"),
    (UnitOfWork, "__aenter__", "        unit of work: open (every transaction)"),
    (InboxRepository, "open", "        inbox.open (check or mark, with the citizen)"),
    (CitizenMiddleware, "__call__", "        CitizenMiddleware + routing + handler"),
    (CitizenRepository, "ensure", "          citizens.ensure (SELECT with the session)"),
    (Dispatcher, "_listen_update", "          routing + handler"),
    (Conversations, "handle", "            Conversations.handle"),
    (Conversations, "start", "            Conversations.start"),
    (SessionRepository, "get", "              sessions.get (read with the citizen)"),
    (FlowCatalog, "published", "              catalog.published (cached)"),
    (Engine, "handle", "              engine.handle (pure)"),
    (Engine, "start", "              engine.start (pure)"),
    (Engine, "resume", "              engine.resume (pure)"),
    (CallRunner, "run", "              flow calls (categories, nearby, create_report)"),
    (SessionRepository, "save", "              sessions.save (UPDATE, or left for settle)"),
    (dialog_handlers, "send_turn", "            send_turn: render replies"),
    (InboxRepository, "settle", "        inbox.settle (PostgreSQL: mark + session save)"),
    (UnitOfWork, "__aexit__", "        unit of work: commit (every transaction)"),
    (Outgoing, "flush", "        Outgoing.flush: Bot API calls after commit"),
    (fakebot.RecordingSession, "make_request", "          (fake session: serialise, parse)"),
)


class Timers:
    """Wall time, main-thread CPU and calls per label."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attribute: str, label: str) -> None:
        """Replace ``owner.attribute`` with a timed version (undone by :meth:`restore`)."""
        original = getattr(owner, attribute)

        def record(wall: float, cpu: float) -> None:
            self.wall[label] += time.perf_counter() - wall
            self.cpu[label] += time.thread_time() - cpu
            self.calls[label] += 1

        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    return await original(*args, **kwargs)
                finally:
                    record(wall, cpu)

            setattr(owner, attribute, timed_async)
        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    return original(*args, **kwargs)
                finally:
                    record(wall, cpu)

            setattr(owner, attribute, timed)
        self._undo.append(lambda: setattr(owner, attribute, original))

    def clear(self) -> None:
        """Forget what was recorded."""
        self.wall.clear()
        self.cpu.clear()
        self.calls.clear()

    def restore(self) -> None:
        """Put every wrapped attribute back."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class ThreadHops:
    """Counts aiogram's ``asyncio.to_thread`` calls for synchronous filters."""

    def __init__(self) -> None:
        self.count = 0
        # aiogram's handler module calls ``asyncio.to_thread`` through its own import.
        self._original: Any = getattr(aiogram_handler, "asyncio")  # noqa: B009

    def install(self) -> None:
        """Route aiogram's handler module to a counting ``to_thread``."""
        real = self._original.to_thread

        async def to_thread(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(function, *args, **kwargs)

        namespace = type("CountingAsyncio", (), {"to_thread": staticmethod(to_thread)})
        setattr(aiogram_handler, "asyncio", namespace)  # noqa: B010

    def remove(self) -> None:
        """Put aiogram's ``asyncio`` back."""
        setattr(aiogram_handler, "asyncio", self._original)  # noqa: B010


def _kind(statement: str) -> str:
    words = statement.split()
    verb = words[0].upper() if words else "?"
    table_name = next(
        (words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")),
        "?",
    )
    if verb == "UPDATE":
        table_name = words[1] if len(words) > 1 else "?"
    return f"{verb} {table_name}"


async def breakdown(backend: str, citizens: int) -> dict[str, Any]:
    """Run ``citizens`` journeys one at a time with every stage timed."""
    timers, hops = Timers(), ThreadHops()
    statements: Counter[str] = Counter()
    # Wrapped before the bot is built: aiogram keeps bound methods it registers.
    for owner, attribute, label in STAGES:
        timers.wrap(owner, attribute, label)
    try:
        async with open_target("citizenbot", backend) as target:
            assert isinstance(target, CitizenbotTarget)

            def count(*args: Any) -> None:
                statement: str = args[2]
                if not statement.startswith("BEGIN"):
                    statements[_kind(statement)] += 1

            for engine in target.runtime.services.database.engines:
                event.listen(engine.sync_engine, "after_cursor_execute", count)
            factory = UpdateFactory()
            await drive(target, factory, report_journey, range(citizens, citizens + 10), 1)
            with frozen_heap():
                timers.clear()
                statements.clear()
                hops.install()
                run = await drive(target, factory, report_journey, range(citizens), 1)
    finally:
        hops.remove()
        timers.restore()
    updates = run.updates
    stages = [
        {
            "stage": label,
            "calls_per_update": round(timers.calls[label] / updates, 2),
            "wall_ms_per_update": round(1e3 * timers.wall[label] / updates, 3),
            "cpu_ms_per_update": round(1e3 * timers.cpu[label] / updates, 3),
        }
        for _, _, label in STAGES
        if timers.calls[label]
    ]
    return {
        "backend": backend,
        "updates": updates,
        "wall_ms_per_update": round(1e3 * run.seconds / updates, 3),
        "process_cpu_ms_per_update": round(1e3 * run.cpu_seconds / updates, 3),
        "thread_hops_per_update": round(hops.count / updates, 2),
        "sql_per_update": {k: round(v / updates, 2) for k, v in statements.most_common()},
        "stages": stages,
    }


def print_breakdown(found: dict[str, Any]) -> None:
    """The stage table and the SQL statements."""
    print()
    print(
        table(
            f"Where an update's time goes on {found['backend']} ({found['updates']} updates, one "
            f"at a time; wall {found['wall_ms_per_update']} ms and process CPU "
            f"{found['process_cpu_ms_per_update']} ms per update)",
            ["stage", "calls/upd", "wall ms/upd", "main-thread CPU ms/upd"],
            [
                [s["stage"], s["calls_per_update"], s["wall_ms_per_update"], s["cpu_ms_per_update"]]
                for s in found["stages"]
            ],
        )
    )
    sql = ", ".join(f"{kind} {n}" for kind, n in found["sql_per_update"].items())
    total = sum(found["sql_per_update"].values())
    print(f"SQL statements per update: {total:.2f} ({sql})")
    print(f"aiogram thread hops (sync filters) per update: {found['thread_hops_per_update']}\n")


async def run(backends: Sequence[str], citizens: int) -> None:
    """Every backend asked for."""
    usable, postgres = await available_backends(backends)
    info = machine(postgres)
    print(describe_machine(info), flush=True)
    results: dict[str, Any] = {"machine": info, "backends": {}}
    for backend in usable:
        found = await breakdown(backend, citizens)
        results["backends"][backend] = found
        print_breakdown(found)
    print(f"results: {write_results(NAME, results)}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.breakdown", description="Where one update's time goes."
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--citizens", type=int, default=60)
    args = parser.parse_args(argv)
    asyncio.run(run(args.backends, args.citizens))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
