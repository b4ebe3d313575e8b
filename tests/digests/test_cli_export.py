"""`citizenbot export` writes both CSV files of a date range, with a progress line."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from storage.db import Database
from tests.digests.seed import seed_world


async def _seed(database_url: str) -> None:
    database = Database(database_url)
    try:
        async with database.uow() as uow:
            await seed_world(uow)
    finally:
        await database.dispose()


async def _audit(database_url: str) -> list[dict[str, object]]:
    database = Database(database_url)
    try:
        async with database.uow() as uow:
            return [e.details for e in await uow.repos.staff.audit_entries(action="digest.export")]
    finally:
        await database.dispose()


def test_export_round_trips_the_reports_and_ratings_of_some_services(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    asyncio.run(_seed(database_url))
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("TIMEZONE", "UTC")
    out = tmp_path / "export"
    argv = ["export", "--from", "2026-03-01", "--to", "2026-03-07", "--out", str(out)]
    assert main([*argv, "--services", "lights"]) == 0
    captured = capsys.readouterr()
    assert "reports: 3/3 rows 100%" in captured.err
    reports_path = out / "reports-2026-03-01-2026-03-07.csv"
    ratings_path = out / "ratings-2026-03-01-2026-03-07.csv"
    assert captured.out.split() == [str(reports_path), str(ratings_path)]
    with reports_path.open(encoding="utf-8-sig", newline="") as handle:
        reports = list(csv.DictReader(handle))
    assert [row["service"] for row in reports] == ["lights"] * 3
    created = [datetime.fromisoformat(row["created_at"]) for row in reports]
    assert created == sorted(created)
    assert all(
        datetime(2026, 3, 1, tzinfo=UTC) <= c < datetime(2026, 3, 8, tzinfo=UTC) for c in created
    )
    with ratings_path.open(encoding="utf-8-sig", newline="") as handle:
        ratings = list(csv.DictReader(handle))
    assert ratings and {row["service"] for row in ratings} == {"lights"}
    assert not list(out.glob("*.part"))
    details = asyncio.run(_audit(database_url))
    assert len(details) == 1 and details[0]["reports"] == 3

    assert main([*argv, "--services", "zeppelins"]) == 2
    assert "no such service: zeppelins" in capsys.readouterr().err
