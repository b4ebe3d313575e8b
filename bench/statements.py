"""The hot statements of every update: the fast way against SQLAlchemy's, per statement.

Each update of a dialog runs the same few statements (the inbox mark, the citizen
lookup with the open session, the session save). ``storage.repositories._fast`` runs
them on the driver's connection of the unit of work's transaction; this measures the
citizen lookup both ways in one transaction, alternating rounds so that a host that
changes speed affects both alike, and reports main-thread CPU per statement.

    python -m bench.statements [--rounds 6] [--statements 3000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bench.harness import (
    available_backends,
    describe_machine,
    fresh_database,
    machine,
    median,
    ratio,
    run,
    table,
    write_results,
)
from storage.db import Database
from storage.migrate import upgrade
from storage.repositories.citizens import _ENSURE_LOOKUP

NAME = "statements"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
TELEGRAM_ID = 5


async def _per_statement(database: Database, fast: bool, count: int) -> float:
    """Main-thread CPU µs per citizen lookup, ``count`` of them in one unit of work."""
    params = {"telegram_id": TELEGRAM_ID}
    async with database.uow() as uow:
        session = uow.session
        await _ENSURE_LOOKUP.execute(session, params)  # the transaction has begun
        started = time.process_time()
        for _ in range(count):
            if fast:
                (await _ENSURE_LOOKUP.execute(session, params)).first()
            else:
                (await session.execute(_ENSURE_LOOKUP.statement, params)).first()
        return (time.process_time() - started) / count * 1e6


async def measure(backend: str, rounds: int, count: int) -> dict[str, Any]:
    """Both ways on a fresh database of ``backend``, in alternating rounds."""
    async with fresh_database(backend) as url:
        await upgrade(url)
        database = Database(url)
        try:
            async with database.uow() as uow:
                await uow.repos.citizens.ensure(
                    telegram_id=TELEGRAM_ID, language="en", first_name="A", username=None, now=NOW
                )
            fast: list[float] = []
            ordinary: list[float] = []
            for _ in range(rounds):
                fast.append(await _per_statement(database, True, count))
                ordinary.append(await _per_statement(database, False, count))
        finally:
            await database.dispose()
    return {
        "fast_us": median(fast),
        "sqlalchemy_us": median(ordinary),
        "ratio": ratio(median(fast), median(ordinary)),
        "fast_rounds": fast,
        "sqlalchemy_rounds": ordinary,
    }


async def benchmark(rounds: int, count: int) -> dict[str, Any]:
    backends, postgres = await available_backends(["sqlite", "postgres"])
    info = machine(postgres)
    print(describe_machine(info), flush=True)
    results: dict[str, Any] = {"machine": info}
    for backend in backends:
        results[backend] = await measure(backend, rounds, count)
    rows = [
        [
            backend,
            results[backend]["fast_us"],
            results[backend]["sqlalchemy_us"],
            results[backend]["ratio"],
        ]
        for backend in backends
    ]
    print(
        table(
            "the citizen lookup, main-thread CPU per statement (median of the rounds)",
            ["backend", "fast way µs", "SQLAlchemy's way µs", "fast ÷ SQLAlchemy"],
            rows,
        )
    )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each way (default 6)")
    parser.add_argument(
        "--statements", type=int, default=3000, help="statements per round (default 3000)"
    )
    args = parser.parse_args(argv)
    rounds, count = (2, 500) if args.quick else (args.rounds, args.statements)
    results = run(benchmark(rounds, count))
    print(f"results: {write_results(NAME, results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
