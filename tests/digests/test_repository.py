"""Digest figures, each checked against the hand-computed world of ``seed.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.db import Database, UnitOfWork
from storage.models import Rating, Report
from storage.repositories.digests import (
    Backlog,
    Breakdown,
    DigestRepository,
    Drivers,
    RespondentCell,
    SatisfactionFigures,
    VolunteeringFigures,
    _unindexed,
)
from tests.digests.seed import END, PREVIOUS_START, START, World, seed_world


@pytest.fixture
async def seeded(database: Database) -> AsyncIterator[tuple[UnitOfWork, World]]:
    async with database.uow() as uow:
        yield uow, await seed_world(uow)


def ids(world: World) -> list[int]:
    return [world.lights, world.roads, world.parks]


async def test_new_reports_by_category_and_status(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).report_figures(ids(world), START, END)
    assert figures.total.new == 7
    assert figures.total.by_category == {"broken_light": 3, "litter": 2, "pothole": 2}
    # Largest first, ties in code order.
    assert list(figures.total.by_status.items()) == [
        ("fixed", 3),
        ("open", 2),
        ("duplicate", 1),
        ("in_progress", 1),
    ]
    lights, roads = figures.services[world.lights], figures.services[world.roads]
    assert (lights.new, lights.by_category, lights.by_status) == (
        3,
        {"broken_light": 3},
        {"fixed": 2, "open": 1},
    )
    assert (roads.new, roads.by_category) == (4, {"litter": 2, "pothole": 2})
    assert roads.by_status == {"duplicate": 1, "fixed": 1, "in_progress": 1, "open": 1}


async def test_fixed_reopened_rates_and_median_time_to_fix(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).report_figures(ids(world), START, END)
    total = figures.total
    # Fixed in the period: R2 1 day, L1 2, L2 4, O1 7, O5 10 (O4 is fixed after it).
    assert (total.fixed, total.median_days_to_fix) == (5, pytest.approx(4.0))
    assert total.fixed_rate == pytest.approx(5 / 7)
    # O5 (a "reopened" event) and O2 (a status change from fixed back to open) were
    # reopened in the period; R1's open -> in_progress and "supported" are not.
    assert (total.reopened, total.reopened_rate) == (2, pytest.approx(0.4))
    lights = figures.services[world.lights]
    # An even count: the mean of the two middle values (4 and 7 days).
    assert (lights.fixed, lights.median_days_to_fix) == (4, pytest.approx(5.5))
    assert lights.fixed_rate == pytest.approx(4 / 3)
    assert lights.reopened_rate == pytest.approx(0.25)
    roads = figures.services[world.roads]
    assert (roads.fixed, roads.median_days_to_fix) == (1, 1.0)
    assert (roads.reopened, roads.reopened_rate) == (1, 1.0)
    assert roads.fixed_rate == pytest.approx(0.25)


async def test_backlog_by_age_and_overdue_at_the_period_end(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).report_figures(ids(world), START, END)
    # 0-7: L3, R1, R4; 8-30: O4 (fixed only after the end), P2, B1 (exactly 8 days);
    # 31-90: O2; over 90: O3. R3 closed, O6 closed without a date.
    assert figures.total.backlog == Backlog(days_0_7=3, days_8_30=3, days_31_90=1, days_over_90=1)
    assert figures.total.backlog.total == 8
    assert figures.total.overdue == 4  # R1, O2, O3, O4
    assert figures.services[world.lights].backlog == Backlog(days_0_7=1, days_8_30=1)
    assert figures.services[world.lights].overdue == 1
    assert figures.services[world.roads].backlog == Backlog(
        days_0_7=2, days_8_30=2, days_31_90=1, days_over_90=1
    )
    assert figures.services[world.roads].overdue == 3


async def test_the_previous_period_has_its_own_figures(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).report_figures(ids(world), PREVIOUS_START, START)
    total = figures.total
    assert (total.new, total.fixed, total.reopened) == (5, 1, 1)
    assert total.median_days_to_fix == pytest.approx(3.0)  # P1
    assert total.reopened_rate == 1.0
    # At 1 March: O1, O5 (fixed later), P2, B1 young; O4 9 days; O2; O3.
    assert total.backlog == Backlog(days_0_7=4, days_8_30=1, days_31_90=1, days_over_90=1)
    assert total.overdue == 2
    assert figures.services[world.lights].median_days_to_fix is None


async def test_a_service_without_activity_has_empty_figures(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    repository = DigestRepository(uow.session)
    figures = (await repository.report_figures(ids(world), START, END)).services[world.parks]
    assert (figures.new, figures.fixed, figures.backlog.total, figures.fixed_rate) == (
        0,
        0,
        0,
        None,
    )
    satisfaction = await repository.satisfaction(ids(world), START, END)
    assert satisfaction.services[world.parks] == SatisfactionFigures()


async def test_satisfaction_csat_mean_drivers_effort_and_nps(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).satisfaction(ids(world), START, END)
    total = figures.total
    assert total.ratings == 11
    assert total.csat == pytest.approx(7 / 11)
    assert total.mean_overall == pytest.approx(38 / 11)
    assert total.drivers == Drivers(
        timeliness=pytest.approx(29 / 9),
        knowledge=pytest.approx(5.0),
        courtesy=pytest.approx(33 / 9),
        fairness=pytest.approx(3.0),
        outcome=pytest.approx(25 / 9),
    )
    assert total.effort == pytest.approx(26 / 9)
    # 9 answers: 4 promoters (9-10), 2 passives, 3 detractors (0-6).
    assert (total.nps_answers, total.nps) == (9, pytest.approx(100 / 9))
    lights = figures.services[world.lights]
    assert (lights.ratings, lights.csat, lights.mean_overall) == (
        6,
        pytest.approx(0.5),
        pytest.approx(19 / 6),
    )
    assert lights.nps == pytest.approx(100 / 6)
    roads = figures.services[world.roads]
    assert (roads.ratings, roads.csat, roads.mean_overall, roads.nps) == (
        5,
        pytest.approx(0.8),
        pytest.approx(3.8),
        pytest.approx(0.0),
    )
    assert roads.drivers.timeliness == pytest.approx(10 / 3)


async def test_satisfaction_of_the_previous_period(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    figures = await DigestRepository(uow.session).satisfaction(ids(world), PREVIOUS_START, START)
    assert (figures.total.ratings, figures.total.csat, figures.total.mean_overall) == (4, 0.5, 3.0)
    assert figures.total.nps == pytest.approx(0.0)
    lights = figures.services[world.lights]
    assert (lights.csat, lights.nps) == (1.0, pytest.approx(50.0))


async def test_recent_comments_are_text_only_newest_first(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    comments = await DigestRepository(uow.session).recent_comments(ids(world), START, END)
    # Blank comments are skipped; the ones at the exclusive end are outside.
    assert comments.total == ("Rude staff", "Très bien", "Nothing happened")
    assert comments.services[world.lights] == ("Rude staff", "Too slow <b>really</b>", "Great job")
    assert comments.services[world.roads] == ("Très bien", "Nothing happened", "Pothole fixed fast")
    assert comments.services[world.parks] == ()


async def test_respondents_hide_cells_under_five_people(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    respondents = await DigestRepository(uow.session).respondents(ids(world), START, END)
    # English: five people (c1 rated three times), shown. French: four, hidden.
    assert respondents.total == (
        Breakdown(
            dimension="language",
            cells=(
                RespondentCell(
                    value="en", people=5, ratings=7, csat=pytest.approx(4 / 7), hidden=False
                ),
                RespondentCell(value="fr", people=None, ratings=None, csat=None, hidden=True),
            ),
        ),
    )
    # Per service every language has fewer than five people: all hidden, no counts.
    for service in (world.lights, world.roads):
        (breakdown,) = respondents.services[service]
        assert all(cell.hidden and cell.people is None for cell in breakdown.cells)
        assert {cell.value for cell in breakdown.cells} == {"en", "fr"}
    assert respondents.services[world.parks] == (Breakdown(dimension="language"),)


async def test_the_small_cell_threshold_is_a_parameter(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    respondents = await DigestRepository(uow.session).respondents(
        ids(world), START, END, min_cell=4
    )
    french = respondents.total[0].cells[1]
    assert (french.value, french.people, french.ratings, french.hidden) == ("fr", 4, 4, False)


async def test_volunteering_signups_attendance_and_fill(seeded: tuple[UnitOfWork, World]) -> None:
    uow, _ = seeded
    repository = DigestRepository(uow.session)
    now = await repository.volunteering(START, END)
    # Shifts op1 and op2 (op3 cancelled, op4 later): 6 places, 5 confirmed; attendance
    # recorded for 4 of them, 3 came. Eight sign-ups made by six people.
    assert now == VolunteeringFigures(
        signups=8,
        volunteers=6,
        shifts=2,
        slots=6,
        confirmed=5,
        attendance_recorded=4,
        attended=3,
    )
    assert (now.attendance_rate, now.fill_rate) == (0.75, pytest.approx(5 / 6))
    before = await repository.volunteering(PREVIOUS_START, START)
    assert (before.signups, before.attendance_rate, before.fill_rate) == (
        3,
        1.0,
        pytest.approx(2 / 3),
    )


async def test_series_buckets_each_period_in_one_statement(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    earlier = PREVIOUS_START - timedelta(days=7)
    points = await DigestRepository(uow.session).series(
        ids(world), [(START, END), (earlier, PREVIOUS_START), (PREVIOUS_START, START)]
    )
    assert [(p.start, p.received, p.fixed, p.ratings) for p in points] == [
        (earlier, 1, 0, 1),  # O4 on 20 February; the rating on 21 February
        (PREVIOUS_START, 5, 1, 4),
        (START, 7, 5, 11),
    ]
    assert [p.csat for p in points] == [0.0, 0.5, pytest.approx(7 / 11)]


async def test_series_for_one_service(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    (point,) = await DigestRepository(uow.session).series([world.roads], [(START, END)])
    assert (point.received, point.fixed, point.ratings, point.csat) == (4, 1, 5, 0.8)


async def test_overlapping_or_naive_periods_are_refused(database: Database) -> None:
    async with database.uow() as uow:
        await check_refusals(uow)


async def check_refusals(uow: UnitOfWork) -> None:
    repository = DigestRepository(uow.session)
    with pytest.raises(ValueError, match="overlap"):
        await repository.series(None, [(PREVIOUS_START, END), (START, END)])
    with pytest.raises(ValueError, match="aware"):
        await repository.satisfaction(None, datetime(2026, 3, 1), datetime(2026, 3, 8))
    with pytest.raises(ValueError, match="end after"):
        await repository.report_figures(None, END, START)


async def test_no_service_list_means_every_service(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    repository = DigestRepository(uow.session)
    everything = await repository.report_figures(None, START, END)
    listed = await repository.report_figures(ids(world), START, END)
    assert everything.total == listed.total
    assert set(everything.services) == {world.lights, world.roads}


async def test_services_and_category_names(seeded: tuple[UnitOfWork, World]) -> None:
    uow, world = seeded
    repository = DigestRepository(uow.session)
    assert [s.code for s in await repository.services()] == ["lights", "roads", "parks"]
    assert [s.code for s in await repository.services([world.roads])] == ["roads"]
    assert (await repository.category_names())["pothole"]["fr"] == "Nid-de-poule"


async def test_empty_database_gives_empty_figures(database: Database) -> None:
    async with database.uow() as uow:
        repository = DigestRepository(uow.session)
        start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
        reports = await repository.report_figures(None, start, end)
        assert (reports.total.new, reports.total.median_days_to_fix, reports.services) == (
            0,
            None,
            {},
        )
        assert (await repository.satisfaction(None, start, end)).total == SatisfactionFigures()
        assert (await repository.respondents(None, start, end)).total == (
            Breakdown(dimension="language"),
        )
        assert await repository.volunteering(start, end) == VolunteeringFigures()


def test_full_scans_are_asked_of_sqlite_with_a_unary_plus() -> None:
    statement = select(_unindexed(Report.service_id)).where(_unindexed(Report.created_at) < END)
    assert "+reports.service_id" in str(statement.compile(dialect=sqlite.dialect()))
    rendered = str(statement.compile(dialect=postgresql.dialect()))
    assert "+reports" not in rendered and "FROM reports" in rendered


async def test_hidden_cells_are_ordered_by_value_not_by_their_size(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    await uow.session.execute(
        insert(Rating).values(
            citizen_id=world.citizens["c9"],
            service_id=world.roads,
            overall=3,
            language="de",
            created_at=START,
        )
    )
    respondents = await DigestRepository(uow.session).respondents(ids(world), START, END)
    # French has 4 people and German 1: sorting hidden cells by size would tell.
    assert [(c.value, c.hidden) for c in respondents.total[0].cells] == [
        ("en", False),
        ("de", True),
        ("fr", True),
    ]


async def test_several_periods_at_once_equal_one_at_a_time(
    seeded: tuple[UnitOfWork, World],
) -> None:
    uow, world = seeded
    repository = DigestRepository(uow.session)
    periods = [(START, END), (PREVIOUS_START, START)]
    reports = await repository.report_figures_for(ids(world), periods)
    satisfaction = await repository.satisfaction_for(ids(world), periods)
    for index, (start, end) in enumerate(periods):
        assert reports[index] == await repository.report_figures(ids(world), start, end)
        assert satisfaction[index] == await repository.satisfaction(ids(world), start, end)
    with pytest.raises(ValueError, match="overlap"):
        await repository.report_figures_for(None, [(PREVIOUS_START, END), (START, END)])
