"""What every benchmark shares: the machine description, tables, JSON results, databases.

The machine is shared and absolute times vary from run to run, so benchmarks report
ratios measured in the same run; the machine description says what they ran on.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

RESULTS = Path(__file__).with_name("results")
POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgres")


# --- the machine -----------------------------------------------------------------------


@contextmanager
def frozen_heap() -> Iterator[None]:
    """As the bot does before serving (``bot.app.run``): what was built so far lives as
    long as the process, so full collections need not walk it. Without this a full
    collection of the benchmark's set-up (0.2–0.3 s, holding the event loop) lands in
    whichever measurement triggers it."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


async def postgres_version(server: str = POSTGRES_SERVER) -> str | None:
    """The PostgreSQL server's version, or None when it does not answer."""
    try:
        connection = await asyncpg.connect(_asyncpg_dsn(server), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def machine(postgres: str | None) -> dict[str, Any]:
    """What the figures were measured on."""
    versions: dict[str, str | None] = {}
    for package in ("aiogram", "aiohttp", "sqlalchemy", "aiosqlite", "asyncpg", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_mb": _memory_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres or "unreachable",
        "packages": versions,
        "load_average_start": load_average(),
    }


def describe_machine(info: dict[str, Any]) -> str:
    """One paragraph for the top of a benchmark's output."""
    return (
        f"machine: {info['cores']} cores ({info['cpu']}), {info['memory_mb']} MB RAM, "
        f"{info['os']}; Python {info['python']}, SQLite {info['sqlite']}, "
        f"PostgreSQL {info['postgresql']}; load average {info['load_average_start']}"
    )


# --- figures -------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is zero."""
    return numerator / denominator if denominator else float("nan")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            if math.isinf(value):
                return "∞"
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    body = [[cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]

    def line(values: Sequence[str], numeric: Sequence[bool]) -> str:
        return "  ".join(
            v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)
        )

    numeric = [
        all(isinstance(row[i], int | float) for row in rows) if rows else False
        for i in range(len(headers))
    ]
    out = [title, line(list(headers), numeric), line(["-" * w for w in widths], numeric)]
    out += [line(row, numeric) for row in body]
    return "\n".join(out)


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity: an unmeasurable figure is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_results(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **data}
    data.setdefault("machine", {})["load_average_end"] = load_average()
    path.write_text(json.dumps(_finite(data), indent=2, default=str) + "\n")
    return path


# --- databases -----------------------------------------------------------------------


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def _postgres_admin(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_SERVER), timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_database(backend: str) -> AsyncIterator[str]:
    """An empty database for one measurement; yields its SQLAlchemy URL, then drops it.

    SQLite: a file in a temporary directory. PostgreSQL: a database
    ``citizenbot_bench_<random>`` on :data:`POSTGRES_SERVER`.
    """
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="citizenbot-bench-") as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    name = f"citizenbot_bench_{uuid.uuid4().hex[:12]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield (
            make_url(POSTGRES_SERVER)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        await _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def available_backends(wanted: Sequence[str]) -> tuple[list[str], str | None]:
    """The wanted backends that answer, and the PostgreSQL version (None if unreachable)."""
    version = await postgres_version()
    backends = [b for b in wanted if b != "postgres" or version is not None]
    return backends, version


def run(coroutine: Any) -> Any:
    """``asyncio.run`` with the benchmark's conventions (one place to change them)."""
    return asyncio.run(coroutine)
