"""Opportunities as a file: create, change, move, raise slots, cancel; broken files refused."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.configfile import ConfigFileError, ImportSummary
from bot.i18n import Translator
from bot.usecases.configuration import detect_kind
from bot.usecases.opportunity_file import export_opportunities, import_opportunities
from storage.db import Database
from storage.migrate import upgrade_sync
from storage.models import AuditEntry, OutboxMessage

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

FILE = """\
opportunities:
  - code: river-cleanup
    titles: {en: River clean-up, fr: Nettoyage de la rivière}
    descriptions: {en: Litter along the banks., fr: Déchets le long des berges.}
    skills: [clean_up]
    area: centre
    place: Old bridge
    starts: 2026-11-14 09:30
    ends: "12:30"
    slots: 2
"""


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("en")


async def run_import(
    database: Database, translator: Translator, source: str, *, apply: bool = True
) -> ImportSummary:
    async with database.uow() as uow:
        return await import_opportunities(
            uow,
            source,
            filename="shifts.yaml",
            translator=translator,
            zone=PARIS,
            actor="staff:test",
            now=NOW,
            apply=apply,
        )


async def queued(database: Database) -> Counter[str]:
    async with database.uow() as uow:
        rows = (await uow.session.execute(select(OutboxMessage.kind))).scalars().all()
    return Counter(rows)


async def test_create_sign_up_raise_slots_move_and_cancel(
    database: Database, translator: Translator
) -> None:
    result = await run_import(database, translator, FILE)
    assert result.created == ("river-cleanup",)
    async with database.uow() as uow:
        shift = await uow.repos.volunteering.opportunity_by_code("river-cleanup")
        assert shift is not None
        assert shift.starts_at == datetime(2026, 11, 14, 9, 30, tzinfo=PARIS)
        assert shift.ends_at == datetime(2026, 11, 14, 12, 30, tzinfo=PARIS)
        people = []
        for number in range(3):
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=5000 + number,
                language="en",
                first_name=f"V{number}",
                username=None,
                now=NOW,
            )
            people.append(citizen)
            await uow.repos.volunteering.signup(shift.id, citizen.id, now=NOW)
        shift = await uow.repos.volunteering.opportunity_by_code("river-cleanup")
        assert shift is not None and (shift.confirmed, shift.waitlisted) == (2, 1)

    # Exporting and importing again changes nothing.
    async with database.uow() as uow:
        exported = await export_opportunities(uow, zone=PARIS, now=NOW)
    assert "starts: 2026-11-14 09:30" in exported
    again = await run_import(database, translator, exported)
    assert not again.changed and again.unchanged == 1

    # One more place: the waiting volunteer moves up and is told.
    result = await run_import(database, translator, exported.replace("slots: 2", "slots: 3"))
    assert result.updated == ("river-cleanup",) and result.promoted == 1
    assert (await queued(database))["promotion"] == 1

    # A new time: every signed-up volunteer is told once.
    moved = exported.replace("slots: 2", "slots: 3").replace("09:30", "10:30")
    moved = moved.replace("ends: '12:30'", "ends: '13:30'").replace("ends: 12:30", "ends: 13:30")
    result = await run_import(database, translator, moved)
    assert result.rescheduled == ("river-cleanup",) and result.notified == 3

    # Cancelled: told again, and a cancelled shift cannot come back.
    cancelled = moved.replace("status: scheduled", "status: cancelled")
    result = await run_import(database, translator, cancelled)
    assert result.cancelled == ("river-cleanup",) and result.notified == 3
    with pytest.raises(ConfigFileError, match=r"shifts\.yaml:\d+: 'river-cleanup' was cancelled"):
        await run_import(database, translator, moved)
    async with database.uow() as uow:
        actions = (await uow.session.execute(select(AuditEntry.action))).scalars().all()
    assert actions.count("config.import") == 4


async def test_a_broken_file_is_refused_with_lines_and_changes_nothing(
    database: Database, translator: Translator
) -> None:
    broken = (
        FILE.replace("slots: 2", "slots: many")
        .replace("starts: 2026-11-14 09:30", "starts: next saturday")
        .replace("area: centre", "area: Centre Ville")
        + "    colour: green\n"
    )
    with pytest.raises(ConfigFileError) as caught:
        await run_import(database, translator, broken)
    text = str(caught.value)
    assert "shifts.yaml:6: 'area' is an area code" in text
    assert "shifts.yaml:8: 'starts' is a local date and time" in text
    assert "shifts.yaml:10: 'slots' is a whole number" in text
    assert "shifts.yaml:11: unknown key 'colour'" in text
    async with database.uow() as uow:
        assert await uow.repos.volunteering.opportunity_by_code("river-cleanup") is None


async def test_slots_cannot_go_below_those_signed_up(
    database: Database, translator: Translator
) -> None:
    await run_import(database, translator, FILE)
    async with database.uow() as uow:
        shift = await uow.repos.volunteering.opportunity_by_code("river-cleanup")
        assert shift is not None
        for number in range(2):
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=6000 + number, language="en", first_name="V", username=None, now=NOW
            )
            await uow.repos.volunteering.signup(shift.id, citizen.id, now=NOW)
    with pytest.raises(ConfigFileError, match="has 2 volunteers signed up"):
        await run_import(database, translator, FILE.replace("slots: 2", "slots: 1"))


def test_the_command_line_imports_and_exports_shifts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shifts.db'}"
    upgrade_sync(url)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TIMEZONE", "Europe/Paris")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    source = tmp_path / "shifts.yaml"
    source.write_text(FILE.replace("2026-11-14", "2099-11-14"), encoding="utf-8")
    assert main(["config", "import", "opportunities", str(source), "--dry-run"]) == 0
    assert "created: river-cleanup" in capsys.readouterr().out
    assert main(["config", "export", "opportunities", "-"]) == 0
    assert "river-cleanup" not in capsys.readouterr().out  # a dry run changes nothing
    assert main(["config", "import", "opportunities", str(source)]) == 0
    assert main(["config", "export", "opportunities", "-"]) == 0
    exported = capsys.readouterr().out
    assert "starts: 2099-11-14 09:30" in exported and "times in Europe/Paris" in exported
    source.write_text(FILE.replace("slots: 2", "slots: -1"), encoding="utf-8")
    assert main(["config", "import", "opportunities", str(source)]) == 1
    assert "shifts.yaml:10: 'slots' is a whole number" in capsys.readouterr().err


def test_a_shifts_file_is_recognised_by_its_shape() -> None:
    assert detect_kind(FILE) == "opportunities"
