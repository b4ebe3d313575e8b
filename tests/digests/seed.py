"""A small, hand-computed world for digest tests.

The period is the week [1 March, 8 March 2026); the previous period is the week
before, [22 February, 1 March). Every expected figure in the tests is worked out
by hand from the rows below; the comments next to the rows say where each counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from storage.db import UnitOfWork
from storage.models import (
    Category,
    Citizen,
    Opportunity,
    Rating,
    Report,
    ReportEvent,
    Service,
    Signup,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 8, tzinfo=UTC)
PREVIOUS_START = datetime(2026, 2, 22, tzinfo=UTC)


def at(month: int, day: int, hour: int = 0, year: int = 2026) -> datetime:
    """A UTC moment in 2026 (or ``year``)."""
    return datetime(year, month, day, hour, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class World:
    """Ids of what :func:`seed_world` made."""

    lights: int
    roads: int
    parks: int
    citizens: dict[str, int]


# (key, service, category, created, status, fixed_at, closed_at, due_at)
REPORTS: list[tuple[str, str, str, datetime, str, datetime | None, datetime | None, datetime]] = [
    # New in the period (7): lights 3, roads 4.
    ("L1", "lights", "broken_light", at(3, 1, 10), "fixed", at(3, 3, 10), None, at(3, 11)),
    ("L2", "lights", "broken_light", at(3, 2), "fixed", at(3, 6), None, at(3, 12)),
    ("L3", "lights", "broken_light", at(3, 5), "open", None, None, at(3, 15)),
    ("R1", "roads", "pothole", at(3, 2, 12), "in_progress", None, None, at(3, 4)),
    ("R2", "roads", "pothole", at(3, 3), "fixed", at(3, 4), None, at(3, 13)),
    ("R3", "roads", "litter", at(3, 6), "duplicate", None, at(3, 7), at(3, 16)),
    ("R4", "roads", "litter", at(3, 7), "open", None, None, at(3, 20)),
    # Older ones.
    ("O1", "lights", "broken_light", at(2, 25), "fixed", at(3, 4), None, at(3, 7)),
    ("O2", "roads", "pothole", at(1, 20), "open", None, None, at(1, 30)),
    (
        "O3",
        "roads",
        "litter",
        at(11, 1, year=2025),
        "investigating",
        None,
        None,
        at(11, 11, year=2025),
    ),
    # Fixed after the period end: still open at the end.
    ("O4", "lights", "broken_light", at(2, 20), "fixed", at(3, 10), None, at(3, 2)),
    # Fixed (before), reopened on 3 March, fixed again on 5 March.
    ("O5", "lights", "broken_light", at(2, 23), "fixed", at(3, 5), None, at(3, 5)),
    # Fixed in the previous period, reopened on 28 February.
    ("P1", "roads", "pothole", at(2, 24), "fixed", at(2, 27), None, at(3, 6)),
    ("P2", "roads", "litter", at(2, 26), "open", None, None, at(3, 10)),
    # Exactly 8 days old at the period end: the 8-30 bucket, not 0-7.
    ("B1", "roads", "pothole", at(2, 28), "open", None, None, at(3, 20)),
    # Closed without a timestamp: never counted as open.
    ("O6", "lights", "broken_light", at(1, 10), "closed", None, None, at(1, 20)),
]
REOPENED = [("O5", at(3, 3)), ("P1", at(2, 28))]

RATING_FIELDS = (
    "service",
    "citizen",
    "language",
    "overall",
    "timeliness",
    "knowledge",
    "courtesy",
    "fairness",
    "outcome",
    "effort",
    "nps",
    "comment",
    "created_at",
)
_ = None
# service, citizen, language, overall, t, k, c, f, o, effort, nps, comment, created
RATINGS: list[tuple[Any, ...]] = [
    # The period: 11 ratings.
    ("lights", "c1", "en", 5, 5, 5, 4, 3, 1, 1, 10, "Great job", at(3, 1, 9)),
    ("lights", "c1", "en", 4, 4, 5, 4, 3, 2, 2, 9, _, at(3, 2, 9)),
    ("lights", "c2", "en", 3, 3, 5, 4, 3, 3, 3, 8, "", at(3, 3, 9)),
    ("lights", "c3", "en", 2, 2, 5, 4, 3, 4, 4, 6, "Too slow <b>really</b>", at(3, 4, 9)),
    ("roads", "c4", "en", 5, _, _, _, _, _, _, 10, "Pothole fixed fast", at(3, 5, 9)),
    ("roads", "c5", "en", 1, 1, 5, 4, 3, 5, 5, 0, "Nothing happened", at(3, 6, 9)),
    ("roads", "c6", "fr", 4, 4, 5, 4, 3, 1, 2, 7, "Très bien", at(3, 6, 10)),
    ("roads", "c7", "fr", 5, 5, 5, 4, 3, 2, 1, _, _, at(3, 7, 9)),
    ("lights", "c8", "fr", 4, 4, 5, 4, 3, 3, 2, 9, "   ", at(3, 7, 10)),
    ("lights", "c9", "fr", 1, 1, 5, 1, 3, 4, 6, 2, "Rude staff", at(3, 7, 11)),
    ("roads", "c1", "en", 4, _, _, _, _, _, _, _, _, at(3, 7, 12)),
    # The previous period: 4 ratings.
    ("lights", "c1", "en", 5, 4, 4, 4, 4, 4, 2, 10, "Old comment", at(2, 22)),
    ("lights", "c2", "en", 4, 4, 4, 4, 4, 4, 2, 8, _, at(2, 25)),
    ("roads", "c3", "en", 2, 2, 2, 2, 2, 2, 5, 3, _, at(2, 27)),
    ("roads", "c6", "fr", 1, _, _, _, _, _, _, _, _, at(2, 28, 23)),
    # Outside both periods (the ends are exclusive).
    ("lights", "c1", "en", 1, 1, 1, 1, 1, 1, 7, 0, "Too late", END),
    ("lights", "c1", "en", 1, 1, 1, 1, 1, 1, 7, 0, "Too early", at(2, 21, 23)),
]

# code, starts_at, slots, status
OPPORTUNITIES = [
    ("op1", at(3, 2), 4, "scheduled"),
    ("op2", at(3, 5), 2, "scheduled"),
    ("op3", at(3, 6), 10, "cancelled"),
    ("op4", at(3, 9), 5, "scheduled"),
    ("op5", at(2, 25), 3, "scheduled"),
]
# opportunity, citizen, status, created_at, attended
SIGNUPS: list[tuple[str, str, str, datetime, bool | None]] = [
    ("op1", "v1", "confirmed", at(2, 25), True),
    ("op1", "v2", "confirmed", at(3, 1), False),
    ("op1", "v3", "confirmed", at(3, 2), None),
    ("op1", "v4", "waitlisted", at(3, 3), None),
    ("op1", "v5", "cancelled", at(3, 1), None),
    ("op2", "v6", "confirmed", at(3, 4), True),
    ("op2", "v2", "confirmed", at(3, 4), True),
    ("op3", "v3", "confirmed", at(3, 5), None),
    ("op4", "v7", "confirmed", at(3, 7), None),
    ("op5", "v8", "confirmed", at(2, 23), True),
    ("op5", "v9", "confirmed", at(2, 24), True),
]


def status_change(report_id: int, moment: datetime, before: str, after: str) -> dict[str, Any]:
    """A report_events row as a manager's status change writes it."""
    return {
        "report_id": report_id,
        "at": moment,
        "kind": "status_changed",
        "actor": "manager",
        "from_status": before,
        "to_status": after,
    }


async def _ids(uow: UnitOfWork, statement: Any, rows: list[dict[str, Any]]) -> list[int]:
    result = await uow.session.execute(
        statement.returning(statement.table.c.id, sort_by_parameter_order=True), rows
    )
    return [int(value) for value in result.scalars().all()]


async def seed_world(uow: UnitOfWork) -> World:
    """Insert the services, categories, citizens, reports, ratings and shifts above."""
    services = dict(
        zip(
            ("lights", "roads", "parks"),
            await _ids(
                uow,
                insert(Service),
                [
                    {
                        "code": "lights",
                        "names": {"en": "Street lights", "fr": "Éclairage"},
                        "position": 1,
                    },
                    {"code": "roads", "names": {"en": "Roads", "fr": "Voirie"}, "position": 2},
                    {"code": "parks", "names": {"en": "Parks", "fr": "Parcs"}, "position": 3},
                ],
            ),
            strict=True,
        )
    )
    category_rows = [
        ("broken_light", "lights", {"en": "Broken light", "fr": "Lampe en panne"}),
        ("pothole", "roads", {"en": "Pothole", "fr": "Nid-de-poule"}),
        ("litter", "roads", {"en": "Litter", "fr": "Déchets"}),
    ]
    categories = dict(
        zip(
            [code for code, _, _ in category_rows],
            await _ids(
                uow,
                insert(Category),
                [
                    {"code": code, "service_id": services[service], "names": names}
                    for code, service, names in category_rows
                ],
            ),
            strict=True,
        )
    )
    people = [f"c{n}" for n in range(1, 10)] + [f"v{n}" for n in range(1, 10)]
    citizens = dict(
        zip(
            people,
            await _ids(
                uow,
                insert(Citizen),
                [
                    {
                        "telegram_id": 1000 + index,
                        "pseudonym": f"p-{name}",
                        "language": "en",
                        "created_at": START,
                        "last_seen_at": START,
                    }
                    for index, name in enumerate(people)
                ],
            ),
            strict=True,
        )
    )
    report_ids = dict(
        zip(
            [row[0] for row in REPORTS],
            await _ids(
                uow,
                insert(Report),
                [
                    {
                        "reference": f"T-{key}",
                        "citizen_id": citizens["c1"],
                        "category_id": categories[category],
                        "service_id": services[service],
                        "status": status,
                        "description": f"report {key}",
                        "latitude": 50.85,
                        "longitude": 4.35,
                        "address": None,
                        "language": "en",
                        "created_at": created,
                        "updated_at": created,
                        "due_at": due,
                        "fixed_at": fixed,
                        "closed_at": closed,
                    }
                    for key, service, category, created, status, fixed, closed, due in REPORTS
                ],
            ),
            strict=True,
        )
    )
    await uow.session.execute(
        insert(ReportEvent),
        [
            {"report_id": report_ids[key], "at": moment, "kind": "reopened", "actor": "citizen"}
            for key, moment in REOPENED
        ]
        # A reopening as ReportRepository.set_status records it: a status change from
        # fixed (or closed) back to an open status. O2 was fixed on 10 February and
        # reopened on 2 March (its fixed_at was cleared then).
        + [
            status_change(report_ids["O2"], at(2, 10), "open", "fixed"),
            status_change(report_ids["O2"], at(3, 2), "fixed", "open"),
            # Other events in the period are not reopenings.
            status_change(report_ids["R1"], at(3, 3), "open", "in_progress"),
            {"report_id": report_ids["L1"], "at": at(3, 2), "kind": "supported", "actor": "x"},
        ],
    )
    await uow.session.execute(
        insert(Rating),
        [
            {
                **{
                    name: value
                    for name, value in zip(RATING_FIELDS, row, strict=True)
                    if name not in ("service", "citizen")
                },
                "service_id": services[row[0]],
                "citizen_id": citizens[row[1]],
            }
            for row in RATINGS
        ],
    )
    opportunities = dict(
        zip(
            [row[0] for row in OPPORTUNITIES],
            await _ids(
                uow,
                insert(Opportunity),
                [
                    {
                        "code": code,
                        "titles": {"en": code},
                        "descriptions": {"en": code},
                        "skills": {"items": []},
                        "place": "Town hall",
                        "starts_at": starts,
                        "ends_at": starts.replace(hour=3),
                        "slots": slots,
                        "status": status,
                    }
                    for code, starts, slots, status in OPPORTUNITIES
                ],
            ),
            strict=True,
        )
    )
    await uow.session.execute(
        insert(Signup),
        [
            {
                "opportunity_id": opportunities[code],
                "citizen_id": citizens[who],
                "status": status,
                "created_at": created,
                "attended": attended,
            }
            for code, who, status, created, attended in SIGNUPS
        ],
    )
    return World(
        lights=services["lights"],
        roads=services["roads"],
        parks=services["parks"],
        citizens=citizens,
    )
