"""CSV exports of reports and ratings for managers, streamed from the database.

Rows come from a server-side cursor one chunk at a time, so an export of a million
ratings holds one chunk in memory. The async generators yield CSV text per chunk
(the header first) for a web response or a Telegram document; the ``write_*``
functions put the same text in a file. Neither export names a citizen.

Free text typed by citizens (addresses, comments) that a spreadsheet would run
as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return) is prefixed with an apostrophe, as OWASP advises against CSV injection.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import fields
from datetime import datetime
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

from storage.db import UnitOfWork
from storage.repositories.digests import DigestRepository, RatingExportRow, ReportExportRow

ProgressCallback = Callable[[int, int], None]
"""Called after each chunk with (rows done, rows in total)."""

REPORT_COLUMNS: Final = tuple(field.name for field in fields(ReportExportRow))
RATING_COLUMNS: Final = tuple(field.name for field in fields(RatingExportRow))
DEFAULT_CHUNK: Final = 1000
_CITIZEN_TEXT: Final = frozenset({"address", "comment"})
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if name in _CITIZEN_TEXT and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def _csv_text(columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(
        [_cell(name, value) for name, value in zip(columns, row, strict=True)] for row in rows
    )
    return buffer.getvalue()


async def _stream(
    columns: Sequence[str],
    chunks: AsyncIterator[Sequence[Any]],
    total: int,
    progress: ProgressCallback | None,
) -> AsyncIterator[str]:
    yield _csv_text(columns, [tuple(columns)])
    # attrgetter, not dataclasses.astuple: astuple deep-copies every value.
    values = attrgetter(*columns)
    done = 0
    if progress is not None:
        progress(done, total)
    async for chunk in chunks:
        yield _csv_text(columns, [values(row) for row in chunk])
        done += len(chunk)
        if progress is not None:
            # Rows made while the export runs can push done past the first count.
            progress(done, max(total, done))


async def iter_reports_csv(
    uow: UnitOfWork,
    *,
    service_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
) -> AsyncIterator[str]:
    """CSV text of the reports made in ``[start, end)``, one chunk of rows at a time.

    Columns: :data:`REPORT_COLUMNS`; times in ISO 8601 UTC, empty cells for none.
    """
    repository = DigestRepository(uow.session)
    total = await repository.count_report_rows(service_ids, start, end)
    chunks = repository.report_rows(service_ids, start, end, chunk_size=chunk_size)
    async for text in _stream(REPORT_COLUMNS, chunks, total, progress):
        yield text


async def iter_ratings_csv(
    uow: UnitOfWork,
    *,
    service_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
) -> AsyncIterator[str]:
    """CSV text of the ratings made in ``[start, end)``, one chunk of rows at a time.

    Columns: :data:`RATING_COLUMNS`; times in ISO 8601 UTC, empty cells for none.
    """
    repository = DigestRepository(uow.session)
    total = await repository.count_rating_rows(service_ids, start, end)
    chunks = repository.rating_rows(service_ids, start, end, chunk_size=chunk_size)
    async for text in _stream(RATING_COLUMNS, chunks, total, progress):
        yield text


def _counting(progress: ProgressCallback | None) -> tuple[ProgressCallback, list[int]]:
    """A progress callback that also remembers the rows done, for the return value."""
    done = [0]

    def report(rows: int, total: int) -> None:
        done[0] = rows
        if progress is not None:
            progress(rows, total)

    return report, done


async def _write(texts: AsyncIterator[str], path: Path, encoding: str) -> None:
    # Written beside the target and renamed at the end: an interrupted export
    # never leaves a truncated file under the final name.
    partial = path.with_name(path.name + ".part")
    handle: TextIO = await asyncio.to_thread(partial.open, "w", encoding=encoding, newline="")
    try:
        async for text in texts:
            await asyncio.to_thread(handle.write, text)
    except BaseException:
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(handle.close)
    await asyncio.to_thread(os.replace, partial, path)


class CsvRows(Protocol):
    """:func:`iter_reports_csv` or :func:`iter_ratings_csv`."""

    def __call__(
        self,
        uow: UnitOfWork,
        *,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        chunk_size: int = ...,
        progress: ProgressCallback | None = ...,
    ) -> AsyncIterator[str]: ...


async def write_csv(
    rows: CsvRows,
    uow: UnitOfWork,
    path: Path,
    *,
    service_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
    encoding: str = "utf-8",
) -> int:
    """Write the CSV text of ``rows`` to ``path``; return the number of rows written.

    ``encoding="utf-8-sig"`` lets Excel read accents right.
    """
    report, done = _counting(progress)
    texts = rows(
        uow,
        service_ids=service_ids,
        start=start,
        end=end,
        chunk_size=chunk_size,
        progress=report,
    )
    await _write(texts, path, encoding)
    return done[0]


write_reports_csv = partial(write_csv, iter_reports_csv)
write_ratings_csv = partial(write_csv, iter_ratings_csv)


async def csv_text(
    rows: CsvRows,
    uow: UnitOfWork,
    *,
    service_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
) -> tuple[str, int]:
    """The whole CSV text of ``rows`` and the number of rows in it (a small export)."""
    report, done = _counting(None)
    texts = [
        text
        async for text in rows(uow, service_ids=service_ids, start=start, end=end, progress=report)
    ]
    return "".join(texts), done[0]
