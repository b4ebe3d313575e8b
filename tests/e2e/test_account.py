"""A citizen's own things over HTTP: /status, /myshifts with the waiting list, /mydata, /forget."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from storage.db import Database
from storage.models import Base, Rating, Report, Signup
from tests.e2e.conftest import BotFactory
from tests.e2e.test_journeys import TEXTS, report_journey
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.needles import holds

pytestmark = pytest.mark.e2e

ANA = {
    "id": 8101,
    "first_name": "Anastasia",
    "username": "ana_unique_handle",
    "language_code": "en",
}
BEN = {"id": 8102, "first_name": "Benedikt", "language_code": "fr"}


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def prepare_full_shift(url: str) -> None:
    """Ana holds the only place of a shift; Ben waits behind her."""
    now = datetime.now(UTC)
    async with open_database(url) as database, database.uow() as uow:
        ana, _ = await uow.repos.citizens.ensure(
            telegram_id=ANA["id"],
            language="en",
            first_name=ANA["first_name"],
            username=ANA["username"],
            now=now,
        )
        ben, _ = await uow.repos.citizens.ensure(
            telegram_id=BEN["id"],
            language="fr",
            first_name=BEN["first_name"],
            username=None,
            now=now,
        )
        shift = await uow.repos.volunteering.add_opportunity(
            code="tree-planting",
            titles={"en": "Tree planting", "fr": "Plantation d'arbres"},
            descriptions={"en": "Plant trees.", "fr": "Plantez des arbres."},
            skills=["green_spaces"],
            area="west",
            place="West park",
            starts_at=now + timedelta(days=3),
            ends_at=now + timedelta(days=3, hours=2),
            slots=1,
        )
        assert (
            await uow.repos.volunteering.signup(shift.id, ana.id, now=now)
        ).status == "confirmed"
        assert (
            await uow.repos.volunteering.signup(shift.id, ben.id, now=now)
        ).status == "waitlisted"


async def test_status_shifts_data_and_erasure(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    await prepare_full_shift(database_url)
    await start_bot()
    client = emulator_server.client
    ana = Citizen(client, ANA)
    ben = Citizen(client, BEN)
    await ben.send("/start", expect="Bonjour")

    reference = await report_journey(ana, TEXTS["en"])
    listing = await ana.send("/status", expect="Your reports")
    assert reference in listing.content and "open" in listing.content
    detail = await ana.send(f"/status {reference.lower()}", expect=reference)
    assert "Deep pothole <b>near</b> the school" in detail.content  # shown as typed, not as markup
    await ben.send(f"/status {reference}", expect="ouvert")
    await ana.send("/status R-999999", expect="cannot find")

    # Ana gives up her place: Ben, first on the waiting list, gets it and is told in French.
    shifts = await ana.send("/myshifts", expect="Tree planting")
    assert "confirmed" in shifts.content
    await ana.tap("✖️ I can’t come (1)", expect="Your place is cancelled")
    await client.wait_for_bot_message(
        BEN["id"], predicate=lambda m: "une place s’est libérée" in m.content
    )
    statuses = {s.citizen_id: s.status for s in await _all(database_url, select(Signup))}
    assert sorted(statuses.values()) == ["cancelled", "confirmed"]

    # /mydata: a JSON document with what we hold.
    sent = await client.send_text(ANA["id"], "/mydata", user=ANA)
    export = await client.wait_for_bot_message(
        ANA["id"], after=sent.message_id, predicate=lambda m: m.raw.get("document") is not None
    )
    data = json.loads(await client.download_file(export.raw["document"]["file_id"]))
    assert data["citizen"]["username"] == ANA["username"]
    assert [r["reference"] for r in data["reports"]] == [reference]

    # /forget: nothing of Ana remains anywhere; her report stays, anonymised.
    await ana.send("/forget", expect="Erase your personal data")
    await ana.tap("🗑️ Yes, erase", expect="your personal data is erased")
    [report] = await _all(database_url, select(Report))
    assert report.citizen_id is None and report.reference == reference
    leftovers = await _search_everywhere(
        database_url, [str(ANA["id"]), ANA["first_name"], ANA["username"]]
    )
    assert leftovers == []
    assert await _all(database_url, select(Rating)) == []


async def _all(url: str, statement: object) -> list[object]:
    async with open_database(url) as database, database.uow() as uow:
        return list((await uow.session.scalars(statement)).all())  # type: ignore[call-overload]


async def _search_everywhere(url: str, needles: list[str]) -> list[str]:
    """Every table, every row, as text: which needles appear, and where."""
    found = []
    async with open_database(url) as database, database.uow() as uow:
        for table in Base.metadata.sorted_tables:
            rows = (await uow.session.execute(text(f"SELECT * FROM {table.name}"))).all()
            for row in rows:
                flat = " ".join(repr(value) for value in row)
                found += [f"{table.name}: {needle}" for needle in needles if holds(flat, needle)]
    return found
