"""Digest cost: ``build_digest`` for all services over 1,000,000 ratings and 200,000 reports.

The data covers one year before ``NOW`` (12 services, 60,000 citizens, report
events, shifts and sign-ups) and is bulk-loaded with ``executemany`` on SQLite and
``COPY`` on PostgreSQL into a database migrated with the project's migrations (the
indexes are the real ones), then analysed as a production database would be.

For each digest length (a week, a month, a quarter, a year), in the same run:

* ``digest`` — :func:`bot.digests.compute.build_digest` in a unit of work, as the
  scheduler will call it;
* ``raw SQL`` — the very statements it sends (captured from the engine) replayed
  through the bare driver (aiosqlite / asyncpg) with no SQLAlchemy and no Python
  around them: the aggregation the digest rests on.

Their ratio is the cost of everything that is not the database's work. Rounds are
interleaved so a busy neighbour slows both alike; the medians are reported. The
chart (8 periods) and a CSV export of the month's ratings are timed too.

    python -m bench.digest [--quick] [--backends sqlite postgres] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import numpy as np
from sqlalchemy import event
from sqlalchemy.engine import make_url

from bench.harness import (
    BACKENDS,
    available_backends,
    describe_machine,
    fresh_database,
    machine,
    median,
    ratio,
    table,
    write_results,
)
from bot.digests.chart import render_chart
from bot.digests.compute import build_digest, build_series, trailing_periods
from bot.digests.export import write_ratings_csv
from bot.i18n import Translator
from storage import migrate
from storage.db import Database
from storage.repositories.reports import OPEN_STATUSES

NAME = "digest"
GOAL_RATIO = 1.2
GOAL_SQLITE_SECONDS = 2.0
NOW = datetime(2026, 3, 1, tzinfo=UTC)
SPAN_DAYS = 365
DAY = 86_400
PERIODS = {"week": 7, "month": 30, "quarter": 91, "year": 365}
SERVICES = 12
CATEGORIES_PER_SERVICE = 3
CITIZENS = 60_000
LANGUAGES = (("en", 0.58), ("fr", 0.36), ("nl", 0.05), ("de", 0.01))
COMMENTS = ("Thank you!", "Too slow.", "Nobody answered.", "Fixed the same week, great.")


@dataclass(frozen=True, slots=True)
class Size:
    """How much data to generate."""

    ratings: int
    reports: int
    opportunities: int
    signups: int


FULL = Size(ratings=1_000_000, reports=200_000, opportunities=2_000, signups=30_000)
QUICK = Size(ratings=100_000, reports=20_000, opportunities=200, signups=3_000)


# --- data ----------------------------------------------------------------------------


@dataclass(slots=True)
class Tables:
    """Column-oriented rows per table; times as UTC seconds since the epoch (``int64``).

    ``times`` names the time columns; a ``None`` in an object array is SQL NULL.
    """

    columns: dict[str, dict[str, Any]]
    times: frozenset[str]

    def count(self, table: str) -> int:
        """Rows in ``table``."""
        return len(next(iter(self.columns[table].values())))


def _nullable(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[~present] = None
    return out


def generate(size: Size, seed: int = 7) -> Tables:
    """Deterministic, plausible data: most old reports fixed, scores skewed high.

    numpy draws whole columns at once: a million ratings take about a second.
    """
    rng = np.random.default_rng(seed)
    now = int(NOW.timestamp())
    first = now - SPAN_DAYS * DAY
    categories = SERVICES * CATEGORIES_PER_SERVICE
    services = np.arange(1, SERVICES + 1)
    category_ids = np.arange(1, categories + 1)
    columns: dict[str, dict[str, Any]] = {
        "services": {
            "id": services,
            "code": [f"service{n}" for n in services],
            "names": [json.dumps({"en": f"Service {n}", "fr": f"Service {n}"}) for n in services],
            "active": [True] * SERVICES,
            "position": services,
        },
        "categories": {
            "id": category_ids,
            "code": [f"category{n}" for n in category_ids],
            "service_id": (category_ids - 1) // CATEGORIES_PER_SERVICE + 1,
            "names": [json.dumps({"en": f"Category {n}"}) for n in category_ids],
            "target_days": [10] * categories,
            "radius_m": [50] * categories,
            "active": [True] * categories,
            "position": category_ids,
        },
    }  # fmt: skip
    citizens = np.arange(1, CITIZENS + 1)
    columns["citizens"] = {
        "id": citizens,
        "telegram_id": citizens + 10_000,
        "pseudonym": [f"c{n}" for n in citizens],
        "language": ["en"] * CITIZENS,
        "language_chosen": [True] * CITIZENS,
        "created_at": np.full(CITIZENS, first),
        "last_seen_at": np.full(CITIZENS, first),
    }
    n = size.reports
    # Sorted: rows are appended as citizens write, so ids follow time, as in production
    # (and a period's rows sit together in the table).
    created = np.sort(first + rng.integers(0, SPAN_DAYS * DAY, n))
    category = rng.integers(1, categories + 1, n)
    fate = rng.random(n)
    fixed_at = created + rng.exponential(12 * DAY, n).astype(np.int64)
    is_fixed = (fate < 0.85) & (fixed_at < now)
    closed_at = created + 2 * DAY
    is_closed = (fate >= 0.85) & (fate < 0.90) & (closed_at < now)
    status = np.array(OPEN_STATUSES, dtype=object)[rng.integers(0, len(OPEN_STATUSES), n)]
    status[is_fixed] = "fixed"
    status[is_closed] = "duplicate"
    report_ids = np.arange(1, n + 1)
    columns["reports"] = {
        "id": report_ids,
        "reference": [f"R-{i:06d}" for i in report_ids],
        "citizen_id": rng.integers(1, CITIZENS + 1, n),
        "category_id": category,
        "service_id": (category - 1) // CATEGORIES_PER_SERVICE + 1,
        "status": status,
        "description": ["bench"] * n,
        "latitude": 50.8 + rng.random(n) / 10,
        "longitude": 4.3 + rng.random(n) / 10,
        "anonymous": [True] * n,
        "language": ["en"] * n,
        "supporters": rng.integers(1, 4, n),
        "created_at": created,
        "updated_at": created,
        "due_at": created + 10 * DAY,
        "fixed_at": _nullable(fixed_at, is_fixed),
        "closed_at": _nullable(closed_at, is_closed),
    }
    # History as the application writes it: a "created" event for every report, a
    # status change when it is fixed or closed, and for 4 % of the fixed ones a
    # status change back to open 3 days later (a reopening).
    reopened = is_fixed & (rng.random(n) < 0.04) & (fixed_at + 3 * DAY < now)
    parts = [
        (report_ids, created, "created", None, "open"),
        (report_ids[is_fixed], fixed_at[is_fixed], "status_changed", "in_progress", "fixed"),
        (report_ids[is_closed], closed_at[is_closed], "status_changed", "open", "duplicate"),
        (report_ids[reopened], fixed_at[reopened] + 3 * DAY, "status_changed", "fixed", "open"),
    ]
    event_reports = np.concatenate([ids for ids, *_ in parts])
    columns["report_events"] = {
        "id": np.arange(1, len(event_reports) + 1),
        "report_id": event_reports,
        "at": np.concatenate([moments for _, moments, *_ in parts]),
        "kind": [kind for ids, _, kind, _, _ in parts for _ in range(len(ids))],
        "actor": ["citizen"] * len(event_reports),
        "from_status": [before for ids, _, _, before, _ in parts for _ in range(len(ids))],
        "to_status": [after for ids, _, _, _, after in parts for _ in range(len(ids))],
    }
    m = size.ratings
    overall = rng.choice(np.arange(1, 6), m, p=[0.08, 0.10, 0.17, 0.35, 0.30])
    has_drivers = rng.random(m) < 0.7
    ratings: dict[str, Any] = {
        "id": np.arange(1, m + 1),
        "citizen_id": _nullable(rng.integers(1, CITIZENS + 1, m), rng.random(m) >= 0.02),
        "service_id": rng.integers(1, SERVICES + 1, m),
        "overall": overall,
    }
    for driver in ("timeliness", "knowledge", "courtesy", "fairness", "outcome"):
        score = np.clip(overall + rng.integers(-1, 2, m), 1, 5)
        ratings[driver] = _nullable(score, has_drivers)
    ratings["effort"] = _nullable(rng.integers(1, 8, m), rng.random(m) < 0.6)
    ratings["nps"] = _nullable(rng.integers(0, 11, m), rng.random(m) < 0.8)
    comments = np.array(COMMENTS, dtype=object)[rng.integers(0, len(COMMENTS), m)]
    ratings["comment"] = _nullable(comments, rng.random(m) < 0.1)
    codes = [code for code, _ in LANGUAGES]
    ratings["language"] = np.array(codes, dtype=object)[
        rng.choice(len(codes), m, p=[weight for _, weight in LANGUAGES])
    ]
    ratings["created_at"] = np.sort(first + rng.integers(0, SPAN_DAYS * DAY, m))
    columns["ratings"] = ratings
    k = size.opportunities
    starts = np.sort(first + rng.integers(0, (SPAN_DAYS + 30) * DAY, k))
    opportunity_status = np.where(rng.random(k) < 0.05, "cancelled", "scheduled").astype(object)
    columns["opportunities"] = {
        "id": np.arange(1, k + 1),
        "code": [f"op{i}" for i in range(1, k + 1)],
        "titles": ['{"en": "Shift"}'] * k,
        "descriptions": ['{"en": "Help"}'] * k,
        "skills": ['{"items": []}'] * k,
        "place": ["Town hall"] * k,
        "starts_at": starts,
        "ends_at": starts + 3 * 3600,
        "slots": rng.integers(2, 21, k),
        "status": opportunity_status,
    }
    s = size.signups
    opportunity = rng.integers(1, k + 1, s)
    shift_start = starts[opportunity - 1]
    attended = np.array([True, True, True, False], dtype=object)[rng.integers(0, 4, s)]
    columns["signups"] = {
        "id": np.arange(1, s + 1),
        "opportunity_id": opportunity,
        "citizen_id": rng.integers(1, CITIZENS + 1, s),
        "status": np.array(["confirmed", "waitlisted", "cancelled"], dtype=object)[
            rng.choice(3, s, p=[0.8, 0.12, 0.08])
        ],
        "created_at": shift_start - rng.integers(1, 31, s) * DAY,
        "attended": _nullable(attended, (shift_start < now) & (rng.random(s) < 0.8)),
    }
    times = frozenset(
        {"created_at", "last_seen_at", "updated_at", "due_at", "fixed_at", "closed_at", "at"}
        | {"starts_at", "ends_at"}
    )
    return Tables(columns=columns, times=times)


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _times(values: Any, render: Callable[[np.ndarray], np.ndarray]) -> list[Any]:
    """Epoch seconds (``None`` kept) through ``render``, which works on whole arrays."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return render(values.astype(np.int64).astype("datetime64[s]")).tolist()
    array = np.asarray(values, dtype=object)
    present = np.array([value is not None for value in array], dtype=bool)
    out = np.full(len(array), None, dtype=object)
    if present.any():
        seconds = array[present].astype(np.int64).astype("datetime64[s]")
        out[present] = render(seconds)
    return out.tolist()


def _postgres_times(seconds: np.ndarray) -> np.ndarray:
    # Naive datetimes go to timestamptz as UTC (asyncpg's binary encoding).
    return seconds.astype("datetime64[us]").astype(object)


def rows_of(tables: Tables, table: str, render: Callable[[np.ndarray], np.ndarray] | None) -> Any:
    """The table's rows as tuples, times rendered for the backend (or left as seconds)."""
    values = [
        _times(column, render) if name in tables.times and render else _as_list(column)
        for name, column in tables.columns[table].items()
    ]
    return zip(*values, strict=True)


def load_sqlite(path: str, tables: Tables) -> None:
    """executemany in one transaction, then ANALYZE (what ``PRAGMA optimize`` does).

    The migrations' secondary indexes are dropped for the load and created again
    after it from their own DDL: one sorted build beats a million B-tree inserts.
    """
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        with connection:
            for name, _ in indexes:
                connection.execute(f'DROP INDEX "{name}"')
            for name, columns in tables.columns.items():
                # SQLite formats the times itself, in SQLAlchemy's storage format
                # for UTC columns (naive, microseconds): much faster than Python.
                marks = ", ".join(
                    "strftime('%Y-%m-%d %H:%M:%S', ?, 'unixepoch') || '.000000'"
                    if column in tables.times
                    else "?"
                    for column in columns
                )
                statement = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"
                connection.executemany(statement, rows_of(tables, name, None))
            for _, sql in indexes:
                connection.execute(sql)
        connection.execute("ANALYZE")
    finally:
        connection.close()


JSON_TABLES = frozenset({"services", "categories", "opportunities"})


async def load_postgres(dsn: str, tables: Tables) -> None:
    """COPY the big tables, executemany the small ones with JSON, then VACUUM ANALYZE.

    Foreign-key triggers are off for the session (the data is consistent by
    construction) and the secondary indexes are built once after the load from
    their own definitions, as a restore would do.
    """
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET session_replication_role = replica")
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND indexname LIKE 'ix\\_%'"
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{index["indexname"]}"')
        for name, columns in tables.columns.items():
            rows = list(rows_of(tables, name, _postgres_times))
            if name in JSON_TABLES:
                # COPY's binary format has no JSON encoder; these tables are small.
                json_columns = {"names", "titles", "descriptions", "skills"}
                marks = ", ".join(
                    f"${i}::jsonb" if column in json_columns else f"${i}"
                    for i, column in enumerate(columns, start=1)
                )
                await connection.executemany(
                    f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", rows
                )
            else:
                await connection.copy_records_to_table(name, records=rows, columns=list(columns))
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {name}))"
            )
        for index in indexes:
            await connection.execute(index["indexdef"])
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


# --- measurements ----------------------------------------------------------------------


Statement = tuple[str, Any]


def capture(database: Database, into: list[Statement]) -> Callable[[], None]:
    """Record the SQL the engine sends (not transaction control); return the remover."""

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            into.append((statement, parameters))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    return lambda: event.remove(engine, "before_cursor_execute", record)


class RawReplay:
    """The captured statements through the bare driver, results fetched in full."""

    def __init__(self, backend: str, url: str, statements: list[Statement]) -> None:
        self.backend = backend
        self.url = url
        self.statements = statements
        self._sqlite: aiosqlite.Connection | None = None
        self._postgres: asyncpg.Connection | None = None

    async def open(self) -> None:
        parsed = make_url(self.url)
        if self.backend == "sqlite":
            self._sqlite = await aiosqlite.connect(str(parsed.database))
        else:
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._postgres = await asyncpg.connect(dsn)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._postgres is not None:
            await self._postgres.close()

    async def run(self) -> int:
        """Execute every statement once (in one transaction, as the unit of work does)."""
        rows = 0
        if self._sqlite is not None:
            await self._sqlite.execute("BEGIN")
            for statement, parameters in self.statements:
                cursor = await self._sqlite.execute(statement, parameters)
                rows += len(await cursor.fetchall())
            await self._sqlite.commit()
            return rows
        assert self._postgres is not None
        async with self._postgres.transaction():
            for statement, parameters in self.statements:
                rows += len(await self._postgres.fetch(statement, *parameters))
        return rows


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of one call.

    SQLite runs inside the process (aiosqlite's thread), so on SQLite the CPU time
    is the digest's whole cost, whatever else the machine is doing; the wall time
    also counts waiting for a core on a busy machine.
    """
    began, began_cpu = time.perf_counter(), time.process_time()
    await action()
    return time.perf_counter() - began, time.process_time() - began_cpu


@dataclass(slots=True)
class DigestFigures:
    """One backend and one digest length."""

    backend: str
    period: str
    days: int
    statements: int
    digest_s: float
    raw_s: float
    ratio: float
    digest_cpu_s: float
    raw_cpu_s: float
    cpu_ratio: float
    digest_runs: list[float]
    raw_runs: list[float]
    ratings_in_period: int
    new_reports_in_period: int


async def measure_digest(
    backend: str, url: str, database: Database, name: str, days: int, rounds: int
) -> DigestFigures:
    """Interleaved rounds of the digest and of its raw SQL; medians and their ratio."""
    start, end = NOW - timedelta(days=days), NOW

    async def digest() -> Any:
        async with database.uow() as uow:
            return await build_digest(uow, service_ids=None, start=start, end=end)

    statements: list[Statement] = []
    remove = capture(database, statements)
    try:
        result = await digest()  # also the warm-up: caches and pages are hot after it
    finally:
        remove()
    replay = RawReplay(backend, url, statements)
    await replay.open()
    try:
        await replay.run()
        runs: dict[str, list[tuple[float, float]]] = {"digest": [], "raw": []}
        for round_ in range(rounds):
            # Alternate which goes first, so neither always meets the colder cache.
            pair = [("digest", digest), ("raw", replay.run)]
            for label, action in pair if round_ % 2 == 0 else reversed(pair):
                runs[label].append(await timed(action))
    finally:
        await replay.close()
    digest_runs = [wall for wall, _ in runs["digest"]]
    raw_runs = [wall for wall, _ in runs["raw"]]
    digest_s, raw_s = median(digest_runs), median(raw_runs)
    digest_cpu = median([cpu for _, cpu in runs["digest"]])
    raw_cpu = median([cpu for _, cpu in runs["raw"]])
    return DigestFigures(
        backend=backend,
        period=name,
        days=days,
        statements=len(statements),
        digest_s=digest_s,
        raw_s=raw_s,
        ratio=ratio(digest_s, raw_s),
        digest_cpu_s=round(digest_cpu, 4),
        raw_cpu_s=round(raw_cpu, 4),
        cpu_ratio=ratio(digest_cpu, raw_cpu),
        digest_runs=[round(value, 4) for value in digest_runs],
        raw_runs=[round(value, 4) for value in raw_runs],
        ratings_in_period=result.total.satisfaction.ratings,
        new_reports_in_period=result.total.reports.new,
    )


async def measure_extras(database: Database, tmp: Path) -> dict[str, Any]:
    """The chart of 8 months, and a CSV export of the last month's ratings."""
    start, end = NOW - timedelta(days=30), NOW
    translator = Translator.load("en")
    began = time.perf_counter()
    async with database.uow() as uow:
        series = await build_series(uow, service_ids=None, periods=trailing_periods(start, end, 8))
    series_s = time.perf_counter() - began
    await render_chart(series, "en", translator=translator)  # matplotlib's first import
    chart_s, _ = await timed(lambda: render_chart(series, "fr", translator=translator))
    began = time.perf_counter()
    async with database.uow() as uow:
        exported = await write_ratings_csv(
            uow, tmp / "ratings.csv", service_ids=None, start=start, end=end, chunk_size=5000
        )
    export_s = time.perf_counter() - began
    return {
        "series_8_months_s": round(series_s, 4),
        "chart_render_s": round(chart_s, 4),
        "export_rows": exported,
        "export_s": round(export_s, 3),
        "export_rows_per_s": round(exported / export_s) if export_s else None,
    }


async def run_backend(backend: str, size: Size, rounds: int, tmp: Path) -> dict[str, Any]:
    """Generate, load and measure one backend."""
    async with fresh_database(backend) as url:
        await migrate.upgrade(url)
        began = time.perf_counter()
        tables = generate(size)
        generated_s = time.perf_counter() - began
        began = time.perf_counter()
        if backend == "sqlite":
            await asyncio.to_thread(load_sqlite, str(make_url(url).database), tables)
        else:
            dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
            await load_postgres(dsn, tables)
        loaded_s = time.perf_counter() - began
        del tables
        database = Database(url)
        try:
            digests = [
                await measure_digest(backend, url, database, name, days, rounds)
                for name, days in PERIODS.items()
            ]
            extras = await measure_extras(database, tmp)
        finally:
            await database.dispose()
    return {
        "backend": backend,
        "generate_s": round(generated_s, 2),
        "load_s": round(loaded_s, 2),
        "digests": [vars_of(figures) for figures in digests],
        **extras,
    }


def vars_of(figures: DigestFigures) -> dict[str, Any]:
    """A DigestFigures as JSON-able data (slots dataclasses have no __dict__)."""
    return {name: getattr(figures, name) for name in DigestFigures.__slots__}


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def verdicts(results: Sequence[dict[str, Any]]) -> list[str]:
    """Whether the week's and month's digests met the goals, per backend."""
    lines = []
    for result in results:
        for digest in result["digests"]:
            if digest["period"] not in ("week", "month"):
                continue
            line = f"{result['backend']} {digest['period']}: {digest['digest_s']:.3f} s, "
            line += f"ratio {digest['ratio']:.2f} (goal ≤ {GOAL_RATIO}: "
            line += f"{_verdict(digest['ratio'] <= GOAL_RATIO)})"
            if result["backend"] == "sqlite":
                line += f"; under {GOAL_SQLITE_SECONDS:.0f} s: "
                line += f"wall {_verdict(digest['digest_s'] < GOAL_SQLITE_SECONDS)}, "
                line += f"cpu {_verdict(digest['digest_cpu_s'] < GOAL_SQLITE_SECONDS)}"
            lines.append(line)
    return lines


async def run(arguments: argparse.Namespace) -> None:
    """Run every backend asked for; print the table and write the JSON."""
    size = QUICK if arguments.quick else FULL
    backends, postgres = await available_backends(arguments.backends)
    info = machine(postgres)
    print(describe_machine(info))
    print(
        f"data: {size.ratings:,} ratings, {size.reports:,} reports over {SPAN_DAYS} days, "
        f"{SERVICES} services, {CITIZENS:,} citizens; {arguments.rounds} rounds each"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="citizenbot-digest-") as directory:
        for backend in backends:
            result = await run_backend(backend, size, arguments.rounds, Path(directory))
            results.append(result)
            print(
                f"{backend}: generated in {result['generate_s']} s, loaded in {result['load_s']} s"
            )
    rows = [
        [
            result["backend"],
            d["period"],
            d["ratings_in_period"],
            d["new_reports_in_period"],
            d["statements"],
            round(d["digest_s"], 3),
            round(d["raw_s"], 3),
            round(d["ratio"], 2),
            round(d["digest_cpu_s"], 3),
            round(d["raw_cpu_s"], 3),
            round(d["cpu_ratio"], 2),
        ]
        for result in results
        for d in result["digests"]
    ]
    headers = ["backend", "period", "ratings", "new reports", "statements"]
    headers += ["digest s", "raw s", "ratio", "digest cpu s", "raw cpu s", "cpu ratio"]
    print()
    print(
        table(
            "build_digest (all services, with the previous period) vs its raw SQL, medians"
            " (cpu: this process; on PostgreSQL the server's work is not in it)",
            headers,
            rows,
        )
    )
    print()
    print(
        table(
            "chart and export (last 30 days)",
            ["backend", "series s", "chart s", "export rows", "export s", "rows/s"],
            [
                [
                    r["backend"],
                    r["series_8_months_s"],
                    r["chart_render_s"],
                    r["export_rows"],
                    r["export_s"],
                    r["export_rows_per_s"],
                ]
                for r in results
            ],
        )
    )
    print()
    for line in verdicts(results):
        print(line)
    path = write_results(
        NAME,
        {
            "machine": info,
            "size": vars_of_size(size),
            "rounds": arguments.rounds,
            "goals": {"ratio": GOAL_RATIO, "sqlite_seconds": GOAL_SQLITE_SECONDS},
            "results": results,
            "verdicts": verdicts(results),
        },
    )
    print(f"\nwritten to {path}")


def vars_of_size(size: Size) -> dict[str, int]:
    """A Size as JSON-able data."""
    return {name: getattr(size, name) for name in Size.__slots__}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--rounds", type=int, default=5)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point (also what ``python -m bench`` calls)."""
    asyncio.run(run(parse(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
