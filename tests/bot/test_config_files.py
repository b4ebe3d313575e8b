"""Configuration files through the use cases: areas, catalogue, state table.

Geometry is tested pure; imports run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from bot import geo
from bot.configfile import ConfigFileError
from bot.i18n import Translator
from bot.statetable import (
    DEFAULT_TABLE,
    TransitionNotAllowedError,
    current_table,
    invalidate_state_tables,
)
from bot.usecases import configuration as config
from bot.usecases.reports import change_report_status
from storage.db import Database
from storage.models import (
    Area,
    AuditEntry,
    Category,
    ConfigDocument,
    OutboxMessage,
    Report,
    Service,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LANGUAGES = ("en", "fr")
ACTOR = "staff:test"


def square(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


CENTRE = {
    "type": "Polygon",
    "coordinates": [square(2.30, 48.80, 2.40, 48.90), square(2.34, 48.84, 2.36, 48.86)],
}
EAST = {
    "type": "MultiPolygon",
    "coordinates": [[square(2.50, 48.80, 2.60, 48.90)], [square(2.70, 48.80, 2.80, 48.90)]],
}
INSIDE, IN_HOLE, OUTSIDE, IN_EAST_2 = (48.82, 2.32), (48.85, 2.35), (48.95, 2.35), (48.85, 2.75)


def feature(code: str, geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    names = {"name_en": f"{code} (en)", "name_fr": f"{code} (fr)"}
    return {
        "type": "Feature",
        "properties": {"code": code, **names, **properties},
        "geometry": geometry,
    }


def collection(*features: dict[str, Any]) -> str:
    """One feature a line, as people's GIS tools write them."""
    body = ",\n".join(json.dumps(item) for item in features)
    return '{"type": "FeatureCollection",\n "features": [\n' + body + "\n]}\n"


AREAS = collection(feature("centre", CENTRE), feature("east", EAST))

CATALOGUE = """\
services:
  - code: roads
    names: {en: Roads, fr: Voirie}
    managers: [7001]
  - code: parks
    names: {en: Parks, fr: Parcs}
categories:
  - code: potholes
    service: roads
    names: {en: Potholes, fr: Nids-de-poule}
    target_days: 10
    radius_m: 50
    open311_code: "002"
  - code: graffiti
    service: parks
    names: {en: Graffiti, fr: Tags}
    target_days: 14
"""


# ------------------------------------------------------------------------ geometry


def test_ray_casting_with_holes_and_multipolygons() -> None:
    assert geo.contains(CENTRE, *INSIDE)
    assert not geo.contains(CENTRE, *IN_HOLE)
    assert not geo.contains(CENTRE, *OUTSIDE)
    assert geo.contains(EAST, *IN_EAST_2)
    assert not geo.contains(EAST, 48.85, 2.65)  # between the two parts
    box = geo.bounding_box(EAST)
    assert (box.min_longitude, box.max_longitude) == (2.50, 2.80)


def test_geometry_problems_name_the_ring_and_position() -> None:
    unclosed = {"type": "Polygon", "coordinates": [[*square(2.3, 48.8, 2.4, 48.9)[:-1], [2.3, 1]]]}
    assert geo.geometry_problems(unclosed) == [
        "outer ring is not closed: its last position must repeat its first"
    ]
    swapped = {
        "type": "Polygon",
        "coordinates": [[[48.8, 2.3], [48.9, 95.0], [48.9, 2.4], [48.8, 2.3]]],
    }
    assert geo.geometry_problems(swapped) == [
        "outer ring, position 2: latitude 95.0 is not in -90..90"
    ]
    assert "is not one of" in geo.geometry_problems({"type": "Point", "coordinates": [1, 2]})[0]
    assert geo.geometry_problems(CENTRE) == [] and geo.geometry_problems(EAST) == []


def test_areas_file_problems_carry_the_feature_line() -> None:
    broken = collection(
        feature("centre", CENTRE),
        feature("centre", EAST),  # line 4: a duplicate code
        feature("north", {"type": "Polygon", "coordinates": [square(2, 48, 3, 49)[:4]]}),
        {
            "type": "Feature",
            "properties": {"code": "south", "name_en": "South"},
            "geometry": CENTRE,
        },
    )
    with pytest.raises(ConfigFileError) as caught:
        config.parse_areas(broken, filename="areas.geojson", languages=LANGUAGES)
    assert [str(problem) for problem in caught.value.problems] == [
        "areas.geojson:4: feature 2 (centre): code 'centre' is already used by feature 1",
        "areas.geojson:5: feature 3 (north): outer ring is not closed: "
        "its last position must repeat its first",
        "areas.geojson:6: feature 4 (south): no name in 'fr' (name_fr, or names.fr)",
    ]
    with pytest.raises(ConfigFileError, match=r"areas.geojson:2: not valid JSON"):
        config.parse_areas('{"type":\n  oops}', filename="areas.geojson", languages=LANGUAGES)


def test_detect_kind_by_shape_or_caption() -> None:
    assert config.detect_kind(AREAS) == "areas"
    assert config.detect_kind(CATALOGUE) == "catalogue"
    assert config.detect_kind("statuses:\n  open: {}\n") == "statuses"
    assert config.detect_kind("id: rate\nversion: 1\nsteps: []\n") is None
    assert config.detect_kind("id: rate\nsteps: []\n", caption="Catalogue") == "catalogue"


# ------------------------------------------------------------------------ database


async def import_(database: Database, kind: config.Kind, source: str, **kw: Any) -> Any:
    async with database.uow() as uow:
        return await config.import_file(
            uow,
            kind,
            source,
            filename=f"{kind}.file",
            languages=LANGUAGES,
            actor=ACTOR,
            now=NOW,
            translator=Translator.load("en"),
            **kw,
        )


async def export(database: Database, kind: config.Kind) -> str:
    async with database.uow() as uow:
        return await config.export_file(
            uow, kind, translator=Translator.load("en"), languages=LANGUAGES
        )


async def new_report(database: Database, latitude: float, longitude: float) -> int:
    async with database.uow() as uow:
        category = await uow.repos.catalog.category_by_code("potholes")
        assert category is not None
        report = await uow.repos.reports.create(
            citizen_id=None,
            category_id=category.id,
            service_id=category.service_id,
            description="x",
            latitude=latitude,
            longitude=longitude,
            address=None,
            anonymous=True,
            language="en",
            now=NOW,
            due_at=NOW + timedelta(days=10),
            area_id=await config.area_of_point(uow, latitude, longitude),
        )
        return report.id


async def area_codes(database: Database) -> dict[int, str | None]:
    async with database.uow() as uow:
        rows = await uow.session.execute(
            select(Report.id, Area.code).outerjoin(Area, Area.id == Report.area_id)
        )
        return {row[0]: row[1] for row in rows.all()}


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.uow() as uow:
        return int(
            await uow.session.scalar(select(func.count()).select_from(model).where(*where)) or 0
        )


async def role_notices(database: Database) -> list[tuple[int, str]]:
    """What the outbox holds for people whose staff roles changed, oldest first."""
    async with database.uow() as uow:
        rows = await uow.session.execute(
            select(OutboxMessage.chat_id, OutboxMessage.payload)
            .where(OutboxMessage.kind == "role")
            .order_by(OutboxMessage.id)
        )
        return [(chat_id, payload["text"]) for chat_id, payload in rows.all()]


async def test_pinned_reports_are_assigned_and_reassigned(database: Database) -> None:
    await import_(database, "catalogue", CATALOGUE)
    before = await new_report(database, *INSIDE)
    summary = await import_(database, "areas", AREAS)
    assert (summary.created, summary.reports_moved) == (("centre", "east"), 1)
    inside = await new_report(database, *INSIDE)
    in_hole = await new_report(database, *IN_HOLE)
    outside = await new_report(database, *OUTSIDE)
    east = await new_report(database, *IN_EAST_2)
    assert await area_codes(database) == {
        before: "centre",
        inside: "centre",
        in_hole: None,
        outside: None,
        east: "east",
    }

    # The hole filled in, east dropped: reports follow, in one import, audited.
    filled = {"type": "Polygon", "coordinates": CENTRE["coordinates"][:1]}
    summary = await import_(database, "areas", collection(feature("centre", filled)))
    assert (summary.updated, summary.deactivated, summary.reports_moved) == (
        ("centre",),
        ("east",),
        2,
    )
    codes = await area_codes(database)
    assert (codes[in_hole], codes[east], codes[inside]) == ("centre", None, "centre")
    async with database.uow() as uow:
        assert await config.area_of_point(uow, *IN_EAST_2) is None  # inactive areas hold nothing
        (entry, *_) = await uow.repos.staff.audit_entries(action="config.import")
    assert (entry.subject, entry.details["reports_moved"], entry.details["deactivated"]) == (
        "areas",
        2,
        1,
    )

    # Export, import the export: nothing changes, and the export is the same again.
    exported = await export(database, "areas")
    assert json.loads(exported)["features"][1]["properties"] == {
        "code": "east",
        "name_en": "east (en)",
        "name_fr": "east (fr)",
        "position": 1,
        "active": False,
    }
    again = await import_(database, "areas", exported)
    assert not again.changed and again.unchanged == 2
    assert await export(database, "areas") == exported


async def test_broken_files_change_nothing(database: Database) -> None:
    await import_(database, "catalogue", CATALOGUE)
    await import_(database, "areas", AREAS)
    snapshot = (await export(database, "areas"), await export(database, "catalogue"))
    audits = await count(database, AuditEntry)
    broken = {
        "areas": (
            collection(feature("centre", {"type": "Polygon", "coordinates": [[[2, 48]] * 3]})),
            ["areas.file:3: feature 1 (centre): outer ring has 3 positions"],
        ),
        "catalogue": (
            CATALOGUE.replace("target_days: 14", "target_days: 0").replace(
                "names: {en: Parks, fr: Parcs}", "names: {en: Parks}"
            ),
            ["catalogue.file:6: needs a name in 'fr'", "catalogue.file:17: 'target_days' is 1 to"],
        ),
        "statuses": (
            "statuses:\n  open:\n    kind: fixed\n    to: [eaten]\n",
            [
                "statuses.file:2: status 'confirmed' is missing",
                "statuses.file:3: status 'open' is of kind 'open'",
                "statuses.file:4: 'to' names an unknown status 'eaten'",
            ],
        ),
    }
    for kind, (source, expected) in broken.items():
        with pytest.raises(ConfigFileError) as caught:
            await import_(database, kind, source)
        found = [str(problem) for problem in caught.value.problems]
        for start in expected:
            assert any(line.startswith(start) for line in found), (kind, start, found)
    assert (await export(database, "areas"), await export(database, "catalogue")) == snapshot
    assert await count(database, ConfigDocument) == 0
    assert await count(database, AuditEntry) == audits


async def test_catalogue_round_trip_managers_and_references(database: Database) -> None:
    summary = await import_(database, "catalogue", CATALOGUE)
    assert summary.granted == 1 and len(summary.created) == 4
    told = [(7001, "🔑 You are now manager of Roads. Type /help to see your commands.")]
    assert await role_notices(database) == told
    async with database.uow() as uow:
        manager = await uow.repos.citizens.by_telegram_id(7001)
        roads = await uow.repos.catalog.service_by_code("roads")
        assert manager is not None and roads is not None
        assert (await uow.repos.staff.roles_of(manager.id)).service_ids == {roads.id}
    exported = await export(database, "catalogue")
    assert yaml.safe_load(exported)["categories"][0] == {
        "code": "potholes",
        "service": "roads",
        "names": {"en": "Potholes", "fr": "Nids-de-poule"},
        "target_days": 10,
        "radius_m": 50,
        "open311_code": "002",
        "active": True,
    }
    assert not (await import_(database, "catalogue", exported)).changed

    # Potholes has a report: it is deactivated, not deleted; graffiti and parks go.
    await new_report(database, *OUTSIDE)
    smaller = """\
services:
  - code: roads
    names: {en: Roads, fr: Voirie}
    managers: [7002]
categories: []
"""
    preview = await import_(database, "catalogue", smaller, apply=False)
    assert await role_notices(database) == told  # a preview tells nobody
    summary = await import_(database, "catalogue", smaller)
    assert preview == summary
    notices = await role_notices(database)
    assert notices[: len(told)] == told
    assert sorted(notices[len(told) :]) == [
        (
            7001,
            "🔑 Your staff role has ended: the staff commands are no longer yours."
            " Thank you for your work!",
        ),
        (7002, "🔑 You are now manager of Roads. Type /help to see your commands."),
    ]
    assert summary.deactivated == ("category:potholes",)
    assert summary.deleted == ("category:graffiti", "service:parks")
    assert (summary.granted, summary.revoked) == (1, 1)
    assert (
        await count(database, Category, Category.code == "potholes", Category.active.is_(False))
        == 1
    )
    assert await count(database, Service) == 1
    async with database.uow() as uow:
        assert not (await uow.repos.staff.roles_of(manager.id)).is_staff
        actions = [e.action for e in await uow.repos.staff.audit_entries(actor=ACTOR, limit=50)]
    assert actions.count("role.revoke") == 1 and actions.count("role.grant") == 2
    assert actions.count("config.import") == 3


async def test_state_table_import_export_and_a_refused_transition(database: Database) -> None:
    await import_(database, "catalogue", CATALOGUE)
    report_id = await new_report(database, *INSIDE)
    default = await export(database, "statuses")
    document = yaml.safe_load(default)
    assert document["statuses"]["fixed"]["labels"] == {"en": "fixed", "fr": "résolu"}
    document["statuses"]["fixed"]["labels"]["en"] = "sorted"
    document["statuses"]["open"]["to"] = ["fixed"]
    document["statuses"]["fixed"]["note"] = True
    edited = "# ours\n" + yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    summary = await import_(database, "statuses", edited)
    assert (summary.updated, summary.revision) == (("open", "fixed"), 1)
    assert await export(database, "statuses") == edited  # kept as written

    translator = Translator.load("en")
    async with database.uow() as uow:
        table = await current_table(uow)
        assert table.label(translator, "en", "fixed") == "sorted"
        assert table.label(translator, "fr", "fixed") == "résolu"
        assert table.offered_from("open") == ["fixed"] and table.asks_note("fixed")
    with pytest.raises(TransitionNotAllowedError):
        async with database.uow() as uow:
            await change_report_status(
                uow, report_id, "closed", ACTOR, None, NOW, translator=translator, timezone=UTC
            )
    async with database.uow() as uow:
        report = await uow.repos.reports.by_id(report_id)
        assert report is not None and report.status == "open"
        change = await change_report_status(
            uow, report_id, "fixed", ACTOR, None, NOW, translator=translator, timezone=UTC
        )
        assert change is not None and change.to_status == "fixed"
    invalidate_state_tables()
    assert DEFAULT_TABLE.allows("open", "closed")
