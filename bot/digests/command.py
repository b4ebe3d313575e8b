"""``citizenbot export``: the reports and ratings CSV files of a date range, on disk."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.digests.export import write_ratings_csv, write_reports_csv
from bot.usecases.digests import range_period, record_export
from storage.db import Database

CLI_ACTOR = "cli:export"


def progress_line(label: str, err: TextIO) -> Callable[[int, int], None]:
    """A progress callback that rewrites one stderr line: ``reports 1200/5000 24%``."""

    def show(done: int, total: int) -> None:
        percent = 100 if total == 0 else done * 100 // total
        end = "\n" if done >= total else ""
        err.write(f"\r{label}: {done}/{total} rows {percent:3d}%{end}")
        err.flush()

    return show


async def export_to_directory(
    settings: Settings,
    *,
    first: date,
    last: date,
    out: Path,
    service_codes: Sequence[str] = (),
    err: TextIO,
    clock: Clock | None = None,
) -> dict[str, Path]:
    """Write ``reports-FROM-TO.csv`` and ``ratings-FROM-TO.csv`` into ``out``.

    Days are local to the administration's zone; ``service_codes`` empty means all
    services. Raises ``LookupError`` naming a service code that does not exist.
    """
    zone = ZoneInfo(settings.timezone)
    start, end = range_period(first, last, zone)
    database = Database(settings.database_url)
    written: dict[str, Path] = {}
    rows: dict[str, int] = {}
    try:
        async with database.uow() as uow:
            known = {service.code: service.id for service in await uow.repos.digests.services(None)}
            unknown = [code for code in service_codes if code not in known]
            if unknown:
                raise LookupError(", ".join(unknown))
            # An explicit list lets the (service_id, created_at) indexes serve the scan.
            service_ids = [known[code] for code in service_codes] or sorted(known.values())
            await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
            suffix = f"{first.isoformat()}-{last.isoformat()}.csv"
            for name, write in (("reports", write_reports_csv), ("ratings", write_ratings_csv)):
                path = out / f"{name}-{suffix}"
                rows[name] = await write(
                    uow,
                    path,
                    service_ids=service_ids,
                    start=start,
                    end=end,
                    progress=progress_line(name, err),
                    encoding="utf-8-sig",
                )
                written[name] = path
            await record_export(
                uow,
                CLI_ACTOR,
                service_ids=[known[code] for code in service_codes] or None,
                first=first,
                last=last,
                rows=rows,
                now=(clock or SystemClock()).now(),
            )
    finally:
        await database.dispose()
    return written
