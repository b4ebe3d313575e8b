"""CSV exports stream chunks, report progress, round-trip through csv, name no one."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from sqlalchemy import update

from bot.digests.export import (
    RATING_COLUMNS,
    REPORT_COLUMNS,
    iter_ratings_csv,
    iter_reports_csv,
    write_ratings_csv,
    write_reports_csv,
)
from storage.db import Database
from storage.models import Report
from tests.digests.seed import END, RATINGS, REPORTS, START, seed_world


def csv_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".csv" in path.name)


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_reports_round_trip_in_chunks_with_progress(database: Database) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
        await uow.session.execute(
            update(Report)
            .where(Report.reference == "T-L1")
            .values(address='12, rue "Haute"\nBruxelles', supporters=3)
        )
        await uow.session.execute(
            update(Report).where(Report.reference == "T-L2").values(address="=HYPERLINK(1)")
        )
    progress: list[tuple[int, int]] = []
    async with database.uow() as uow:
        chunks = [
            text
            async for text in iter_reports_csv(
                uow,
                service_ids=None,
                start=START,
                end=END,
                chunk_size=3,
                progress=lambda done, total: progress.append((done, total)),
            )
        ]
    # The header, then 7 reports in chunks of 3, 3 and 1.
    assert len(chunks) == 4
    assert progress == [(0, 7), (3, 7), (6, 7), (7, 7)]
    rows = read("".join(chunks))
    assert tuple(rows[0]) == REPORT_COLUMNS
    assert "citizen_id" not in REPORT_COLUMNS and "description" not in REPORT_COLUMNS
    expected = sorted((row for row in REPORTS if START <= row[3] < END), key=lambda row: row[3])
    assert [row["reference"] for row in rows] == [f"T-{row[0]}" for row in expected]
    first = rows[0]
    assert first == {
        "reference": "T-L1",
        "created_at": "2026-03-01T10:00:00+00:00",
        "category": "broken_light",
        "service": "lights",
        "status": "fixed",
        "latitude": "50.85",
        "longitude": "4.35",
        "address": '12, rue "Haute"\nBruxelles',
        "supporters": "3",
        "due_at": "2026-03-11T00:00:00+00:00",
        "fixed_at": "2026-03-03T10:00:00+00:00",
    }
    assert datetime.fromisoformat(first["created_at"]) == expected[0][3]
    # A formula typed by a citizen is neutralised for spreadsheets.
    assert rows[1]["address"] == "'=HYPERLINK(1)"
    assert rows[2]["fixed_at"] == "" and rows[2]["address"] == ""
    assert world.lights


async def test_ratings_round_trip_for_some_services(database: Database) -> None:
    async with database.uow() as uow:
        world = await seed_world(uow)
    async with database.uow() as uow:
        text = "".join(
            [
                chunk
                async for chunk in iter_ratings_csv(
                    uow, service_ids=[world.lights], start=START, end=END, chunk_size=2
                )
            ]
        )
    rows = read(text)
    assert tuple(rows[0]) == RATING_COLUMNS
    assert "citizen_id" not in RATING_COLUMNS
    expected = [row for row in RATINGS if row[0] == "lights" and START <= row[12] < END]
    assert len(rows) == len(expected) == 6
    assert {row["service"] for row in rows} == {"lights"}
    assert rows[0] == {
        "created_at": "2026-03-01T09:00:00+00:00",
        "service": "lights",
        "overall": "5",
        "timeliness": "5",
        "knowledge": "5",
        "courtesy": "4",
        "fairness": "3",
        "outcome": "1",
        "effort": "1",
        "nps": "10",
        "comment": "Great job",
        "language": "en",
    }
    assert rows[1]["comment"] == ""  # none
    assert rows[3]["comment"] == "Too slow <b>really</b>"
    assert [int(row["overall"]) for row in rows] == [row[3] for row in expected]


async def test_files_are_written_whole(database: Database, tmp_path: Path) -> None:
    async with database.uow() as uow:
        await seed_world(uow)
    progress: list[tuple[int, int]] = []
    async with database.uow() as uow:
        reports = await write_reports_csv(
            uow, tmp_path / "reports.csv", service_ids=None, start=START, end=END
        )
        ratings = await write_ratings_csv(
            uow,
            tmp_path / "ratings.csv",
            service_ids=None,
            start=START,
            end=END,
            chunk_size=4,
            progress=lambda done, total: progress.append((done, total)),
            encoding="utf-8-sig",
        )
    assert (reports, ratings) == (7, 11)
    assert progress[-1] == (11, 11)
    # No partial file is left beside them.
    assert csv_files(tmp_path) == ["ratings.csv", "reports.csv"]
    with (tmp_path / "ratings.csv").open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11
    assert "Très bien" in {row["comment"] for row in rows}


async def test_an_empty_range_gives_the_header_only(database: Database, tmp_path: Path) -> None:
    async with database.uow() as uow:
        written = await write_reports_csv(
            uow, tmp_path / "none.csv", service_ids=None, start=START, end=END
        )
    assert written == 0
    assert (tmp_path / "none.csv").read_text().splitlines() == [",".join(REPORT_COLUMNS)]
