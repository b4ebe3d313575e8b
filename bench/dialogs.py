"""Dialog throughput: simulated citizens complete the report flow, on SQLite and PostgreSQL.

Each citizen answers the report flow as a person would — the main menu's "Report an
issue", a category button, a pin, "Skip" for the photo, a description, "No" to
anonymity, "Send" — pressing the buttons the bot actually sent (read back from the
fake Bot API session). Updates go through the bot's real path, ``Inbox.receive``:
an update of an idle chat while the bot is nearly idle is handled at once and
stored as handled in its handler's transaction; otherwise it is stored (one
transaction shared by the updates arriving meanwhile) and queued, and the processor
runs it through ``Dispatcher.feed_update`` in one transaction with the session state
and the inbox mark. The replies go to a session that serialises them but sends
nothing. Every run is checked afterwards: all
updates done, one report per finished journey, an open conversation only for each
journey stopped half-way.

Three references run in the same process, each on a fresh database of the same backend:

* ``echo`` — a bare aiogram echo handler: the framework floor;
* ``baseline`` — the same flow hand-coded the typical aiogram way (``StatesGroup``,
  ``MemoryStorage``, one INSERT at the end): see ``bench/baseline_bot.py``;
* ``baseline-redis`` — the same bot with aiogram's ``RedisStorage``, as it is typically
  deployed when a dialog must survive a restart (Redis at ``BENCH_REDIS_URL``, by
  default ``redis://127.0.0.1:6379/0``; skipped when no server answers there).

Figures per target: updates/s with ``--concurrency`` citizens answering at once, the
latency of each update from receipt to handled (p50, p99), the same latency with one
citizen at a time (the cost of one update without queueing), SQL statements and
commits per update. The machine is shared, so the targets take turns of
``--slice`` seconds on the same event loop — each keeps its citizens mid-journey
between turns — and a busy neighbour slows all of them alike. A target stops after
``--budget`` seconds of turns even if some citizens have not started (the table says
how many journeys finished; half-done ones are counted and checked).
``python -m bench.breakdown`` shows where citizenbot's time goes.

    python -m bench.dialogs [--quick] [--citizens 2000] [--budget 50] [--slice 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.baseline_bot import (
    CATEGORIES,
    MENU_REPORT,
    SKIP,
    ReportStore,
    build_baseline,
    build_echo,
    redis_answers,
    redis_fsm,
)
from bench.fakebot import BENCH_TOKEN, RecordingSession, SentMessage, UpdateFactory, new_bot
from bench.harness import (
    BACKENDS,
    available_backends,
    describe_machine,
    fresh_database,
    frozen_heap,
    machine,
    percentile,
    ratio,
    table,
    write_results,
)
from bot.app import build_runtime, prepare_content
from bot.config import Settings
from bot.runtime.inbox import Inbox, to_incoming
from bot.runtime.middlewares import Delivery
from storage import migrate
from storage.models import DialogSession, Report
from storage.records import IncomingUpdate

NAME = "dialogs"
GOAL_UPDATES_PER_SECOND = 1500.0
GOAL_COST_RATIO = 1.5
TARGETS = ("echo", "baseline", "baseline-redis", "citizenbot")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
UPDATES_PER_JOURNEY = 7
FIRST_USER_ID = 10_000_000
# Update ids must never repeat in one inbox (a repeat is ignored, as a redelivery).
FIRST_UPDATE_WARMUP, FIRST_UPDATE_ALONE = 50_000_000, 60_000_000
CATEGORY_LABELS = [label for _, label in CATEGORIES]


class JourneyError(AssertionError):
    """The bot did not answer as a citizen would expect: the figures would be meaningless."""


# --- targets: something that takes an update document and handles it -------------------


class Target(Protocol):
    """A bot under measurement."""

    name: str
    session: RecordingSession
    sql: SqlCounter | None

    async def deliver(self, document: dict[str, Any]) -> float:
        """Hand one update to the bot; return ``perf_counter()`` when it was handled."""
        ...

    async def verify(self, journeys: int, abandoned: int = 0) -> dict[str, Any]:
        """Check what ``journeys`` finished (and ``abandoned`` half-done) journeys left."""
        ...


class TimedInbox(Inbox):
    """citizenbot's inbox, telling the benchmark when each update has been handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting: dict[int, asyncio.Future[float]] = {}

    async def handle(self, item: IncomingUpdate, *, delivery: Delivery | None = None) -> None:
        """Handle as the product does, then wake whoever waits for this update."""
        await super().handle(item, delivery=delivery)
        future = self.waiting.pop(item.update_id, None)
        if future is not None and not future.done():
            future.set_result(time.perf_counter())


class CitizenbotTarget:
    """The product: webhook-style receipt into the inbox, the processor, the dispatcher."""

    name = "citizenbot"

    def __init__(self, database_url: str) -> None:
        settings = Settings(database_url=database_url, _env_file=None)
        self.runtime = build_runtime(settings, api_base="http://127.0.0.1:9", token=BENCH_TOKEN)
        self.session = RecordingSession(encoding="json")  # as JsonSession sends it
        self.runtime.bot.session = self.session
        self.inbox = TimedInbox(self.runtime.services, self.runtime.bot, self.runtime.dispatcher)
        self.sql: SqlCounter | None = SqlCounter(*self.runtime.services.database.engines)
        self._loop = asyncio.get_running_loop()

    @classmethod
    @asynccontextmanager
    async def open(cls, database_url: str) -> AsyncIterator[CitizenbotTarget]:
        """Migrate the empty database, seed it as a start-up does, and run."""
        await migrate.upgrade(database_url)
        target = cls(database_url)
        try:
            await prepare_content(target.runtime)
            yield target
        finally:
            await target.inbox.processor.close(grace=10)
            await target.runtime.services.database.dispose()

    async def deliver(self, document: dict[str, Any]) -> float:
        """What the webhook does (parse, store), then wait until the processor handled it."""
        update = self.inbox.parse(document)
        future: asyncio.Future[float] = self._loop.create_future()
        self.inbox.waiting[update.update_id] = future
        await self.inbox.receive([to_incoming(update, document)])
        return await future

    async def verify(self, journeys: int, abandoned: int = 0) -> dict[str, Any]:
        """Every update done, one report per journey, one open session per abandoned one."""
        async with self.runtime.services.database.uow() as uow:
            stats = await uow.repos.inbox.stats()
            reports = await uow.session.scalar(select(func.count()).select_from(Report))
            sessions = await uow.session.scalar(select(func.count()).select_from(DialogSession))
        found = {
            "inbox_done": stats.done,
            "inbox_pending": stats.pending,
            "inbox_failed": stats.failed,
            "reports": reports,
            "open_sessions": sessions,
        }
        if stats.failed or stats.pending or reports != journeys or sessions != abandoned:
            raise JourneyError(f"citizenbot stored something unexpected: {found}")
        return found


class FeedTarget:
    """An aiogram dispatcher fed directly (the references have no inbox)."""

    def __init__(self, name: str, dispatcher: Dispatcher, reports: ReportStore | None) -> None:
        self.name = name
        self.session = RecordingSession()
        self.bot: Bot = new_bot(self.session)
        self.dispatcher = dispatcher
        self.reports = reports
        self.sql = SqlCounter(reports.engine) if reports else None

    @classmethod
    @asynccontextmanager
    async def echo(cls) -> AsyncIterator[FeedTarget]:
        """The echo floor."""
        yield cls("echo", build_echo(), None)

    @classmethod
    @asynccontextmanager
    async def baseline(
        cls, database_url: str, *, redis_url: str | None = None
    ) -> AsyncIterator[FeedTarget]:
        """The typical aiogram bot on its own reports table in an empty database, its
        FSM in memory, or in Redis at ``redis_url``."""
        reports = ReportStore(database_url)
        try:
            await reports.create_table()
            if redis_url is None:
                yield cls("baseline", build_baseline(reports), reports)
            else:
                async with redis_fsm(redis_url) as storage:
                    yield cls("baseline-redis", build_baseline(reports, storage), reports)
        finally:
            await reports.dispose()

    async def deliver(self, document: dict[str, Any]) -> float:
        """What aiogram's webhook handler does: parse, feed."""
        update = Update.model_validate(document, context={"bot": self.bot})
        await self.dispatcher.feed_update(self.bot, update)
        return time.perf_counter()

    async def verify(self, journeys: int, abandoned: int = 0) -> dict[str, Any]:
        """One report per finished journey (the baseline); nothing to check for the echo."""
        if self.reports is None:
            return {}
        stored = await self.reports.count()
        if stored != journeys:
            raise JourneyError(f"baseline stored {stored} reports for {journeys} journeys")
        return {"reports": stored}


# --- citizens --------------------------------------------------------------------------


def pin(index: int) -> tuple[float, float]:
    """A distinct spot per citizen, over 200 m from any other (no duplicate suggestions)."""
    return 48.0 + (index // 500) * 0.002, 2.0 + (index % 500) * 0.003


def _last(session: RecordingSession, chat_id: int, step: str) -> SentMessage:
    message = session.last(chat_id)
    if message is None:
        raise JourneyError(f"citizen {chat_id}: no answer after {step}")
    return message


def _button(session: RecordingSession, chat_id: int, label: str, step: str) -> SentMessage:
    message = session.last_with_buttons(chat_id)
    if message is None or all(text != label for text, _ in message.buttons):
        shown = message.buttons if message else None
        raise JourneyError(f"citizen {chat_id}: no {label!r} button at {step}; shown: {shown}")
    return message


def _data(message: SentMessage, label: str) -> str:
    return next(data for text, data in message.buttons if text == label)


Deliver = Callable[[dict[str, Any]], Awaitable[None]]


async def report_journey(
    target: Target, factory: UpdateFactory, index: int, deliver: Deliver
) -> None:
    """One citizen files a report, answering what the bot shows."""
    user = factory.user(FIRST_USER_ID + index)
    chat, session = user["id"], target.session

    await deliver(factory.text(user, MENU_REPORT))
    label = CATEGORY_LABELS[index % len(CATEGORY_LABELS)]
    shown = _button(session, chat, label, "category")
    await deliver(factory.callback(user, shown, _data(shown, label)))
    if "📍 Send my location" not in _last(session, chat, "category").keyboard:
        raise JourneyError(f"citizen {chat}: no location keyboard")
    await deliver(factory.location(user, *pin(index)))
    if SKIP not in _last(session, chat, "location").keyboard:
        raise JourneyError(f"citizen {chat}: no {SKIP!r} on the photo question")
    await deliver(factory.text(user, SKIP))
    if "describe the problem" not in _last(session, chat, "photo").text:
        raise JourneyError(f"citizen {chat}: not asked for a description")
    await deliver(factory.text(user, f"Broken kerb & a deep pothole, number {index}"))
    shown = _button(session, chat, "No", "anonymity")
    await deliver(factory.callback(user, shown, _data(shown, "No")))
    shown = _button(session, chat, "✅ Send the report", "confirmation")
    await deliver(factory.callback(user, shown, _data(shown, "✅ Send the report")))
    if "report number" not in _last(session, chat, "send").text:
        raise JourneyError(f"citizen {chat}: no report number at the end")


async def echo_journey(
    target: Target, factory: UpdateFactory, index: int, deliver: Deliver
) -> None:
    """As many texts as a report journey has updates; each must come back."""
    user = factory.user(FIRST_USER_ID + index)
    for step in range(UPDATES_PER_JOURNEY):
        text = f"hello {index}, message {step}"
        await deliver(factory.text(user, text))
        if _last(target.session, user["id"], "echo").text != text:
            raise JourneyError(f"citizen {user['id']}: no echo")


Journey = Callable[[Target, UpdateFactory, int, Deliver], Awaitable[None]]


class SqlCounter:
    """Counts the statements and the commits an engine sends (event listeners, cheap)."""

    def __init__(self, *engines: AsyncEngine) -> None:
        self.statements = 0
        self.commits = 0
        for engine in engines:
            event.listen(engine.sync_engine, "after_cursor_execute", self._statement)
            event.listen(engine.sync_engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        statement: str = args[2]
        # SQLite's BEGIN IMMEDIATE is a statement there and not on PostgreSQL: leave it out.
        if not statement.startswith("BEGIN"):
            self.statements += 1

    def _commit(self, connection: Any) -> None:
        # A transaction that never began on the PostgreSQL server (the asyncpg adapter
        # begins lazily, at the first statement that needs it) sends no COMMIT.
        if (
            connection.dialect.driver == "asyncpg"
            and connection.connection.dbapi_connection._transaction is None
        ):
            return
        self.commits += 1


@dataclass(slots=True)
class Run:
    """One measured batch of journeys."""

    journeys: int
    seconds: float
    cpu_seconds: float
    api_calls: int
    statements: int
    commits: int
    latencies: list[float] = field(repr=False)

    @property
    def updates(self) -> int:
        """Handled updates."""
        return len(self.latencies)

    def summary(self) -> dict[str, Any]:
        """The figures, latencies in milliseconds."""
        updates = max(1, self.updates)
        return {
            "journeys": self.journeys,
            "updates": self.updates,
            "seconds": round(self.seconds, 3),
            "updates_per_second": round(self.updates / self.seconds, 1),
            "wall_us_per_update": round(1e6 * self.seconds / updates, 1),
            "cpu_us_per_update": round(1e6 * self.cpu_seconds / updates, 1),
            "api_calls_per_update": round(self.api_calls / updates, 3),
            "sql_statements_per_update": round(self.statements / updates, 3),
            "commits_per_update": round(self.commits / updates, 3),
            "p50_ms": round(1e3 * percentile(self.latencies, 0.50), 3),
            "p99_ms": round(1e3 * percentile(self.latencies, 0.99), 3),
        }


async def drive(
    target: Target,
    factory: UpdateFactory,
    journey: Journey,
    indexes: Sequence[int],
    concurrency: int,
    budget: float | None = None,
) -> Run:
    """Run ``journey`` for every index, ``concurrency`` citizens at a time.

    With a ``budget`` (seconds), no citizen starts after it is spent; those under
    way finish their journey.
    """
    latencies: list[float] = []
    journeys = 0

    async def deliver(document: dict[str, Any]) -> None:
        started = time.perf_counter()
        handled = await target.deliver(document)
        latencies.append(handled - started)

    pending: Iterator[int] = iter(indexes)

    async def citizen_after_citizen() -> None:
        nonlocal journeys
        for index in pending:
            await journey(target, factory, index, deliver)
            journeys += 1
            if budget and time.perf_counter() - started > budget:
                return

    gc.collect()
    sql = target.sql
    calls_before = sum(target.session.calls.values())
    statements_before, commits_before = (sql.statements, sql.commits) if sql else (0, 0)
    cpu_before, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(citizen_after_citizen() for _ in range(concurrency)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return Run(
        journeys=journeys,
        seconds=seconds,
        cpu_seconds=cpu,
        api_calls=sum(target.session.calls.values()) - calls_before,
        statements=(sql.statements - statements_before) if sql else 0,
        commits=(sql.commits - commits_before) if sql else 0,
        latencies=latencies,
    )


@asynccontextmanager
async def open_target(kind: str, backend: str) -> AsyncIterator[Target]:
    """A fresh instance of ``kind`` on a fresh database of ``backend``."""
    if kind == "echo":
        async with FeedTarget.echo() as echo:
            yield echo
        return
    async with fresh_database(backend) as url:
        if kind in ("baseline", "baseline-redis"):
            redis_url = REDIS_URL if kind == "baseline-redis" else None
            async with FeedTarget.baseline(url, redis_url=redis_url) as baseline:
                yield baseline
        else:
            async with CitizenbotTarget.open(url) as product:
                yield product


class Lane:
    """One target's citizens, answering in the time slices the scheduler gives them.

    Its ``concurrency`` citizens stay in their journeys across slices: between slices
    they wait at a gate before their next update, so every slice runs at full load
    and no slice ends with a slow tail of journeys finishing.
    """

    def __init__(
        self,
        target: Target,
        journey: Journey,
        indexes: Iterable[int],
        concurrency: int,
        *,
        first_update_id: int,
    ) -> None:
        self.target = target
        self.journey = journey
        self.factory = UpdateFactory(first_update_id)
        self.concurrency = concurrency
        self.latencies: list[float] = []
        self.finished = 0
        self.abandoned = 0  # journeys stopped half-way (after at least one update)
        self.seconds = self.cpu_seconds = 0.0
        self.api_calls = self.statements = self.commits = 0
        self._indexes = iter(indexes)
        self._gate = asyncio.Event()
        self._settled = asyncio.Event()
        self._settled.set()
        self._in_flight = 0
        self._workers: list[asyncio.Task[None]] = []

    @property
    def done(self) -> bool:
        """Every citizen finished (or the lane was stopped)."""
        return bool(self._workers) and all(worker.done() for worker in self._workers)

    async def _deliver(self, document: dict[str, Any]) -> None:
        await self._gate.wait()
        self._in_flight += 1
        self._settled.clear()
        try:
            started = time.perf_counter()
            handled = await self.target.deliver(document)
            self.latencies.append(handled - started)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._settled.set()

    async def _citizen_after_citizen(self) -> None:
        for index in self._indexes:
            delivered = 0

            async def deliver(document: dict[str, Any]) -> None:
                nonlocal delivered
                await self._deliver(document)
                delivered += 1

            try:
                await self.journey(self.target, self.factory, index, deliver)
            except asyncio.CancelledError:
                if delivered:
                    self.abandoned += 1
                raise
            self.finished += 1

    def _counters(self) -> tuple[int, int, int]:
        sql = self.target.sql
        calls = sum(self.target.session.calls.values())
        return (calls, sql.statements, sql.commits) if sql else (calls, 0, 0)

    async def run_slice(self, seconds: float) -> None:
        """Open the gate for ``seconds`` (less if every citizen finishes), then settle."""
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._citizen_after_citizen()) for _ in range(self.concurrency)
            ]
        gc.collect()
        calls, statements, commits = self._counters()
        cpu, started = time.process_time(), time.perf_counter()
        self._gate.set()
        await asyncio.wait(self._workers, timeout=seconds)
        self._gate.clear()
        await self._settled.wait()
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu
        after = self._counters()
        self.api_calls += after[0] - calls
        self.statements += after[1] - statements
        self.commits += after[2] - commits
        for worker in self._workers:
            if worker.done() and worker.exception() is not None:
                raise worker.exception()  # type: ignore[misc]

    async def stop(self) -> None:
        """Abandon the journeys under way (they wait at the gate)."""
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def result(self) -> Run:
        """What the lane measured."""
        return Run(
            journeys=self.finished,
            seconds=self.seconds,
            cpu_seconds=self.cpu_seconds,
            api_calls=self.api_calls,
            statements=self.statements,
            commits=self.commits,
            latencies=self.latencies,
        )


async def interleave(lanes: Sequence[Lane], slice_seconds: float, budget: float) -> None:
    """Give the lanes turns of ``slice_seconds`` until each is done or used ``budget``."""
    active = list(lanes)
    while active:
        for lane in list(active):
            await lane.run_slice(slice_seconds)
            if lane.done or (budget and lane.seconds >= budget):
                await lane.stop()
                active.remove(lane)


@dataclass(frozen=True, slots=True)
class Plan:
    """How much to run."""

    citizens: int
    concurrency: int
    budget: float  # seconds of turns per target; 0 lets every citizen finish
    slice_seconds: float
    sequential: int
    warmup: int
    targets: tuple[str, ...] = TARGETS


def journey_of(kind: str) -> Journey:
    """What a citizen does with this target."""
    return echo_journey if kind == "echo" else report_journey


async def measure(backend: str, plan: Plan) -> dict[str, dict[str, Any]]:
    """All targets side by side, in alternating slices; then one citizen at a time."""
    async with contextlib.AsyncExitStack() as stack:
        targets = {
            kind: await stack.enter_async_context(open_target(kind, backend))
            for kind in plan.targets
        }
        warmups = [
            await drive(
                target,
                UpdateFactory(first_update_id=FIRST_UPDATE_WARMUP),
                journey_of(kind),
                range(plan.citizens, plan.citizens + plan.warmup),
                min(plan.concurrency, plan.warmup),
            )
            for kind, target in targets.items()
        ]
        stack.enter_context(frozen_heap())
        loaded = [
            Lane(
                target, journey_of(kind), range(plan.citizens), plan.concurrency, first_update_id=1
            )
            for kind, target in targets.items()
        ]
        await interleave(loaded, plan.slice_seconds, plan.budget)
        first = plan.citizens + plan.warmup
        alone = [
            Lane(
                target,
                journey_of(kind),
                range(first, first + plan.sequential),
                1,
                first_update_id=FIRST_UPDATE_ALONE,
            )
            for kind, target in targets.items()
        ]
        await interleave(alone, plan.slice_seconds, 0)
        results = {}
        for kind, warm, lane, single in zip(targets, warmups, loaded, alone, strict=True):
            finished = warm.journeys + lane.finished + single.finished
            results[kind] = {
                "loaded": lane.result().summary(),
                "sequential": single.result().summary(),
                "abandoned_at_budget": lane.abandoned,
                "stored": await targets[kind].verify(finished, lane.abandoned),
            }
    return results


FIGURES = (
    "updates_per_second",
    "wall_us_per_update",
    "cpu_us_per_update",
    "sql_statements_per_update",
    "commits_per_update",
    "api_calls_per_update",
    "p50_ms",
    "p99_ms",
)


def figures_of(measured: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The table's figures per target."""
    figures: dict[str, dict[str, float]] = {}
    for kind, found in measured.items():
        figures[kind] = {name: found["loaded"][name] for name in FIGURES}
        figures[kind]["journeys"] = found["loaded"]["journeys"]
        for name in ("p50_ms", "p99_ms"):
            figures[kind][f"sequential_{name}"] = found["sequential"][name]
    return figures


def ratios(figures: dict[str, dict[str, float]]) -> dict[str, float]:
    """The headline figures: citizenbot against its references and the goals."""
    if not {"echo", "baseline", "citizenbot"} <= set(figures):
        return {}
    product, baseline, echo = figures["citizenbot"], figures["baseline"], figures["echo"]
    found = {
        "cost_vs_baseline": ratio(product["wall_us_per_update"], baseline["wall_us_per_update"]),
        "cpu_vs_baseline": ratio(product["cpu_us_per_update"], baseline["cpu_us_per_update"]),
        "sequential_p50_vs_baseline": ratio(
            product["sequential_p50_ms"], baseline["sequential_p50_ms"]
        ),
        "cost_vs_echo": ratio(product["wall_us_per_update"], echo["wall_us_per_update"]),
        "baseline_vs_echo": ratio(baseline["wall_us_per_update"], echo["wall_us_per_update"]),
        "throughput_vs_goal": ratio(product["updates_per_second"], GOAL_UPDATES_PER_SECOND),
        "echo_vs_goal": ratio(echo["updates_per_second"], GOAL_UPDATES_PER_SECOND),
    }
    redis = figures.get("baseline-redis")
    if redis is not None:
        found["cost_vs_baseline_redis"] = ratio(
            product["wall_us_per_update"], redis["wall_us_per_update"]
        )
        found["baseline_redis_vs_goal"] = ratio(
            redis["updates_per_second"], GOAL_UPDATES_PER_SECOND
        )
    return found


async def benchmark(backends: Sequence[str], plan: Plan) -> dict[str, Any]:
    """Every backend asked for."""
    usable, postgres = await available_backends(backends)
    info = machine(postgres)
    print(describe_machine(info), flush=True)
    budget = f", each for at most {plan.budget:.0f} s" if plan.budget else ""
    print(
        f"{plan.citizens} citizens x {UPDATES_PER_JOURNEY} updates per target, "
        f"{plan.concurrency} at once, targets taking turns of {plan.slice_seconds:.0f} s"
        f"{budget}; then {plan.sequential} citizens one at a time",
        flush=True,
    )
    for missing in sorted(set(backends) - set(usable)):
        print(f"skipped {missing}: the server does not answer", flush=True)
    if "baseline-redis" in plan.targets and not await redis_answers(REDIS_URL):
        print(f"skipped baseline-redis: no Redis answers at {REDIS_URL}", flush=True)
        plan = dataclasses.replace(
            plan, targets=tuple(kind for kind in plan.targets if kind != "baseline-redis")
        )
    results: dict[str, Any] = {"machine": info, "plan": asdict(plan), "backends": {}}
    for backend in usable:
        measured = await measure(backend, plan)
        figures = figures_of(measured)
        found = ratios(figures)
        results["backends"][backend] = {"targets": measured, "ratios": found}
        print_backend(backend, figures, found, plan)
    path = write_results(NAME, results)
    print(f"results: {path}")
    return results


def print_backend(
    backend: str, figures: dict[str, dict[str, float]], found: dict[str, float], plan: Plan
) -> None:
    """The table of one backend and its ratios against the goals."""
    headers = [
        "target",
        "journeys",
        "updates/s",
        "wall µs/upd",
        "CPU µs/upd",
        "SQL/upd",
        "commits/upd",
        "API calls/upd",
        "p50 ms",
        "p99 ms",
        "alone p50 ms",
        "alone p99 ms",
    ]
    names = ["journeys", *FIGURES, "sequential_p50_ms", "sequential_p99_ms"]
    rows: list[list[Any]] = [
        [kind, int(f["journeys"]), *(f[name] for name in names[1:])] for kind, f in figures.items()
    ]
    print()
    print(
        table(
            f"Dialog throughput on {backend} ({plan.concurrency} citizens at once; "
            "'alone': one citizen at a time)",
            headers,
            rows,
        )
    )
    if not found:
        return
    cost, throughput = found["cost_vs_baseline"], found["throughput_vs_goal"]
    print(
        f"citizenbot per-update cost = {cost:.2f}x the baseline's (goal <= {GOAL_COST_RATIO}: "
        f"{'met' if cost <= GOAL_COST_RATIO else 'NOT met'}); CPU {found['cpu_vs_baseline']:.2f}x; "
        f"alone p50 {found['sequential_p50_vs_baseline']:.2f}x; "
        f"{found['cost_vs_echo']:.1f}x the echo floor (baseline {found['baseline_vs_echo']:.1f}x)"
    )
    print(
        f"citizenbot updates/s = {throughput:.3f}x the goal of {GOAL_UPDATES_PER_SECOND:.0f} "
        f"({'met' if throughput >= 1 else 'NOT met'}); the echo floor is "
        f"{found['echo_vs_goal']:.2f}x the goal on this machine"
    )
    if "cost_vs_baseline_redis" in found:
        print(
            f"with its FSM in Redis the baseline makes {found['baseline_redis_vs_goal']:.3f}x "
            f"the goal's updates/s; citizenbot's per-update cost = "
            f"{found['cost_vs_baseline_redis']:.2f}x that bot's"
        )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.dialogs",
        description="Dialog throughput of the report flow against an echo floor and a baseline.",
    )
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--citizens", type=int, help="citizens per loaded run (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="citizens answering at once")
    parser.add_argument(
        "--budget", type=float, help="seconds of turns per target, 0 for no limit (default 50)"
    )
    parser.add_argument(
        "--slice", type=float, help="seconds of each turn the targets take (default 5)"
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    args = parser.parse_args(argv)
    plan = Plan(
        citizens=args.citizens or (200 if args.quick else 2000),
        concurrency=args.concurrency,
        budget=args.budget if args.budget is not None else (15.0 if args.quick else 50.0),
        slice_seconds=args.slice or (3.0 if args.quick else 5.0),
        sequential=10 if args.quick else 30,
        warmup=10 if args.quick else 30,
        targets=tuple(kind for kind in TARGETS if kind in args.targets),
    )
    asyncio.run(benchmark(args.backends, plan))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
