"""Volunteering: profiles, fitting opportunities, sign-ups, the waiting list, erasure."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.db import Database, UnitOfWork
from storage.models import Opportunity, Signup, VolunteerProfile
from storage.repositories.volunteering import OpportunityRecord, VolunteeringRepository

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def make_citizen(uow: UnitOfWork, telegram_id: int) -> int:
    citizen, _ = await uow.repos.citizens.ensure(
        telegram_id=telegram_id, language="en", first_name="A", username=None, now=NOW
    )
    return citizen.id


async def make_citizens(database: Database, count: int) -> list[int]:
    async with database.uow() as uow:
        return [await make_citizen(uow, 1000 + number) for number in range(count)]


async def make_opportunity(
    repo: VolunteeringRepository,
    code: str,
    *,
    skills: list[str] | None = None,
    area: str | None = "centre",
    starts_at: datetime = NOW + DAY,
    slots: int = 2,
) -> OpportunityRecord:
    return await repo.add_opportunity(
        code=code,
        titles={"en": f"Title {code}", "fr": f"Titre {code}"},
        descriptions={"en": "What to do", "fr": "Quoi faire"},
        skills=skills or [],
        area=area,
        place="Town hall",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
        slots=slots,
    )


async def opportunity_with_slots(database: Database, slots: int) -> int:
    async with database.uow() as uow:
        created = await make_opportunity(VolunteeringRepository(uow.session), "shift", slots=slots)
    return created.id


async def signed_up(repo: VolunteeringRepository, opportunity: int, citizen: int) -> int:
    outcome = await repo.signup(opportunity, citizen, now=NOW)
    assert outcome.signup_id is not None
    return outcome.signup_id


async def pseudonym(uow: UnitOfWork, citizen_id: int) -> str:
    citizen = await uow.repos.citizens.by_id(citizen_id)
    assert citizen is not None
    return citizen.pseudonym


async def test_a_profile_is_created_replaced_and_stored_as_items(database: Database) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        citizen = await make_citizen(uow, 1)
        assert await repo.profile(citizen) is None
        await repo.save_profile(
            citizen,
            skills=["clean_up", "food", "clean_up"],
            areas=["north"],
            availability=["weekend_morning"],
            contact_consent=False,
            now=NOW,
        )
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        await repo.save_profile(
            citizen,
            skills=["digital"],
            areas=["anywhere"],
            availability=[],
            contact_consent=True,
            now=NOW + DAY,
        )
        stored = await uow.session.scalar(
            select(VolunteerProfile.skills).where(VolunteerProfile.citizen_id == citizen)
        )
    assert stored == {"items": ["digital"]}
    async with database.uow() as uow:
        profile = await VolunteeringRepository(uow.session).profile(citizen)
    assert profile is not None
    assert profile.skills == ("digital",) and profile.areas == ("anywhere",)
    assert profile.availability == () and profile.contact_consent
    assert profile.updated_at == NOW + DAY


async def test_a_first_profile_keeps_codes_once_in_their_order(database: Database) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        citizen = await make_citizen(uow, 1)
        await repo.save_profile(
            citizen,
            skills=["food", "clean_up", "food"],
            areas=["north", "east"],
            availability=["weekday_evening"],
            contact_consent=False,
            now=NOW,
        )
        profile = await repo.profile(citizen)
    assert profile is not None and profile.skills == ("food", "clean_up")
    assert profile.areas == ("north", "east") and not profile.contact_consent


async def test_an_opportunity_is_found_moved_and_cancelled(database: Database) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        assert await repo.count_opportunities() == 0
        created = await make_opportunity(repo, "park", skills=["green_spaces"], slots=12)
        assert created.status == "scheduled" and created.confirmed == 0 == created.waitlisted
        assert created.places_left == 12
        assert created.titles == {"en": "Title park", "fr": "Titre park"}
        assert created.skills == ("green_spaces",) and created.area == "centre"
        later = NOW + 3 * DAY
        assert await repo.update_opportunity_time(created.id, later, later + timedelta(hours=1))
        moved = await repo.opportunity_by_id(created.id)
        assert moved is not None and moved.starts_at == later
        assert moved.ends_at == later + timedelta(hours=1)
        assert not await repo.update_opportunity_time(created.id + 99, later, later + DAY)
        with pytest.raises(ValueError, match="end after"):
            await repo.update_opportunity_time(created.id, later, later)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        by_code = await repo.opportunity_by_code("park")
        assert by_code is not None and by_code.id == created.id and by_code.starts_at == later
        assert await repo.opportunity_by_code("nope") is None
        assert await repo.cancel_opportunity(created.id)
        assert not await repo.cancel_opportunity(created.id)
        cancelled = await repo.opportunity_by_id(created.id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert await repo.count_opportunities() == 1


async def test_an_opportunity_must_end_after_it_starts(database: Database) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        with pytest.raises(ValueError, match="end after"):
            await repo.add_opportunity(
                code="x",
                titles={"en": "X"},
                descriptions={},
                skills=[],
                area=None,
                place="here",
                starts_at=NOW,
                ends_at=NOW,
                slots=1,
            )
        with pytest.raises(ValueError, match="negative"):
            await repo.add_opportunity(
                code="x",
                titles={"en": "X"},
                descriptions={},
                skills=[],
                area=None,
                place="here",
                starts_at=NOW,
                ends_at=NOW + DAY,
                slots=-1,
            )


async def seed_fitting_cases(repo: VolunteeringRepository) -> None:
    await make_opportunity(repo, "park", skills=["clean_up", "green_spaces"], starts_at=NOW + DAY)
    await make_opportunity(
        repo, "homework", skills=["tutoring"], area="north", starts_at=NOW + 2 * DAY
    )
    await make_opportunity(repo, "any-skill", skills=[], starts_at=NOW + 3 * DAY)
    await make_opportunity(repo, "any-area", skills=["food"], area=None, starts_at=NOW + 4 * DAY)
    await make_opportunity(repo, "started", skills=["clean_up"], starts_at=NOW)
    await make_opportunity(repo, "past", skills=["clean_up"], starts_at=NOW - DAY)
    cancelled = await make_opportunity(repo, "off", skills=["clean_up"], starts_at=NOW + DAY)
    await repo.cancel_opportunity(cancelled.id)


@pytest.mark.parametrize(
    ("skills", "areas", "expected"),
    [
        pytest.param(["clean_up"], ["centre"], ["park", "any-skill"], id="skill-and-area"),
        pytest.param(["food"], ["north"], ["any-area"], id="opportunity-without-area"),
        pytest.param(["digital"], ["centre"], ["any-skill"], id="opportunity-without-skills"),
        pytest.param(["digital"], ["south"], [], id="nothing-fits"),
        pytest.param([], [], ["park", "homework", "any-skill", "any-area"], id="no-preferences"),
        pytest.param(
            ["tutoring", "food"], ["anywhere"], ["homework", "any-skill", "any-area"], id="anywhere"
        ),
        pytest.param(
            ["green_spaces", "tutoring"],
            ["north", "centre"],
            ["park", "homework", "any-skill"],
            id="several-of-each",
        ),
    ],
)
async def test_upcoming_lists_scheduled_opportunities_that_fit_soonest_first(
    database: Database, skills: list[str], areas: list[str], expected: list[str]
) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        await seed_fitting_cases(repo)
        found = await repo.upcoming(now=NOW, skills=skills, areas=areas)
    assert [item.code for item in found] == expected


async def test_upcoming_honours_the_limit(database: Database) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        await seed_fitting_cases(repo)
        found = await repo.upcoming(now=NOW, skills=[], areas=[], limit=2)
    assert [item.code for item in found] == ["park", "homework"]


async def test_upcoming_counts_confirmed_and_waiting_per_opportunity(database: Database) -> None:
    citizens = await make_citizens(database, 4)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        full = await make_opportunity(repo, "full", slots=1, starts_at=NOW + DAY)
        half = await make_opportunity(repo, "half", slots=3, starts_at=NOW + 2 * DAY)
        await make_opportunity(repo, "empty", slots=3, starts_at=NOW + 3 * DAY)
        for citizen in citizens[:3]:
            await repo.signup(full.id, citizen, now=NOW)
        await repo.signup(half.id, citizens[3], now=NOW)
        cancelled = await repo.signup(half.id, citizens[0], now=NOW)
        assert cancelled.signup_id is not None
        await repo.cancel_signup(cancelled.signup_id, citizens[0], now=NOW)
    async with database.uow() as uow:
        found = await VolunteeringRepository(uow.session).upcoming(now=NOW, skills=[], areas=[])
    counts = {item.code: (item.confirmed, item.waitlisted, item.places_left) for item in found}
    assert counts == {"full": (1, 2, 0), "half": (1, 0, 2), "empty": (0, 0, 3)}


async def test_signup_confirms_then_waitlists_then_answers_already(database: Database) -> None:
    citizens = await make_citizens(database, 4)
    opportunity = await opportunity_with_slots(database, 2)
    outcomes = []
    for citizen in citizens:
        async with database.uow() as uow:
            repo = VolunteeringRepository(uow.session)
            outcomes.append(await repo.signup(opportunity, citizen, now=NOW))
    assert [(item.status, item.position) for item in outcomes] == [
        ("confirmed", 0),
        ("confirmed", 0),
        ("waitlisted", 1),
        ("waitlisted", 2),
    ]
    assert all(item.current_status == item.status for item in outcomes)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        again_waiting = await repo.signup(opportunity, citizens[2], now=NOW)
        again_confirmed = await repo.signup(opportunity, citizens[0], now=NOW)
        stored = await repo.opportunity_by_id(opportunity)
    assert again_waiting.status == "already" and again_waiting.current_status == "waitlisted"
    assert again_waiting.position == 1 and again_waiting.signup_id == outcomes[2].signup_id
    assert again_confirmed.status == "already" and again_confirmed.current_status == "confirmed"
    assert again_confirmed.position == 0 and again_confirmed.signup_id == outcomes[0].signup_id
    assert stored is not None and (stored.confirmed, stored.waitlisted) == (2, 2)


async def test_signup_is_closed_for_cancelled_started_or_unknown_opportunities(
    database: Database,
) -> None:
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        citizen = await make_citizen(uow, 1)
        cancelled = await make_opportunity(repo, "off")
        await repo.cancel_opportunity(cancelled.id)
        started = await make_opportunity(repo, "started", starts_at=NOW)
        outcomes = [
            await repo.signup(cancelled.id, citizen, now=NOW),
            await repo.signup(started.id, citizen, now=NOW),
            await repo.signup(started.id + 100, citizen, now=NOW),
        ]
        count = await uow.session.scalar(select(Signup.id).limit(1))
    assert all(item.status == "closed" and item.signup_id is None for item in outcomes)
    assert count is None


async def test_cancelling_a_place_promotes_the_oldest_waiting_in_turn(database: Database) -> None:
    first, second, third, fourth = await make_citizens(database, 4)
    opportunity = await opportunity_with_slots(database, 1)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        ids = {
            citizen: await signed_up(repo, opportunity, citizen)
            for citizen in (first, second, third, fourth)
        }
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        outcome = await repo.cancel_signup(ids[first], first, now=NOW)
        assert outcome.cancelled and outcome.promoted is not None
        assert outcome.promoted.signup_id == ids[second] and outcome.promoted.citizen_id == second
        assert outcome.promoted.opportunity_id == opportunity
        waiting = await repo.signups_for_citizen(third, now=NOW)
        assert [(item.status, item.position) for item in waiting] == [("waitlisted", 1)]
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        leaving_the_queue = await repo.cancel_signup(ids[fourth], fourth, now=NOW)
        assert leaving_the_queue.cancelled and leaving_the_queue.promoted is None
        outcome = await repo.cancel_signup(ids[second], second, now=NOW)
        assert outcome.promoted is not None and outcome.promoted.citizen_id == third
        assert not (await repo.cancel_signup(ids[second], second, now=NOW)).cancelled
        listed = await repo.signups_for_opportunity(opportunity)
    assert [(item.signup_id, item.status) for item in listed] == [(ids[third], "confirmed")]


async def test_cancelling_someone_elses_signup_changes_nothing(database: Database) -> None:
    owner, other = await make_citizens(database, 2)
    opportunity = await opportunity_with_slots(database, 1)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        signed = await repo.signup(opportunity, owner, now=NOW)
        assert signed.signup_id is not None
        assert not (await repo.cancel_signup(signed.signup_id, other, now=NOW)).cancelled
        assert not (await repo.cancel_signup(signed.signup_id + 50, owner, now=NOW)).cancelled
        listed = await repo.signups_for_opportunity(opportunity)
    assert [(item.citizen_id, item.status) for item in listed] == [(owner, "confirmed")]


async def test_a_cancelled_signup_can_sign_up_again(database: Database) -> None:
    (citizen,) = await make_citizens(database, 1)
    opportunity = await opportunity_with_slots(database, 1)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        first = await repo.signup(opportunity, citizen, now=NOW)
        assert first.signup_id is not None
        await repo.cancel_signup(first.signup_id, citizen, now=NOW)
        again = await repo.signup(opportunity, citizen, now=NOW)
    assert again.status == "confirmed" and again.signup_id != first.signup_id


async def test_no_promotion_once_the_opportunity_has_started(database: Database) -> None:
    confirmed, waiting = await make_citizens(database, 2)
    opportunity = await opportunity_with_slots(database, 1)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        place = await repo.signup(opportunity, confirmed, now=NOW)
        await repo.signup(opportunity, waiting, now=NOW)
        assert place.signup_id is not None
        outcome = await repo.cancel_signup(place.signup_id, confirmed, now=NOW + 2 * DAY)
        listed = await repo.signups_for_opportunity(opportunity)
    assert outcome.cancelled and outcome.promoted is None
    assert [(item.citizen_id, item.status) for item in listed] == [(waiting, "waitlisted")]


async def test_two_people_racing_for_the_last_place_never_both_get_it(database: Database) -> None:
    first, second = await make_citizens(database, 2)
    opportunity = await opportunity_with_slots(database, 1)
    first_has_counted = asyncio.Event()

    async def sign_up_and_hold() -> str:
        async with database.uow() as uow:
            outcome = await VolunteeringRepository(uow.session).signup(opportunity, first, now=NOW)
            first_has_counted.set()
            # Keep the transaction open while the other one counts: without the row
            # lock it would not see this uncommitted place and would take it too.
            await asyncio.sleep(0.3)
            return outcome.status

    async def sign_up_meanwhile() -> str:
        await first_has_counted.wait()
        async with database.uow() as uow:
            outcome = await VolunteeringRepository(uow.session).signup(opportunity, second, now=NOW)
            return outcome.status

    statuses = await asyncio.gather(sign_up_and_hold(), sign_up_meanwhile())
    assert list(statuses) == ["confirmed", "waitlisted"]


async def test_many_concurrent_signups_fill_exactly_the_places(database: Database) -> None:
    citizens = await make_citizens(database, 8)
    opportunity = await opportunity_with_slots(database, 3)

    async def sign_up(citizen: int) -> tuple[str, int]:
        async with database.uow() as uow:
            outcome = await VolunteeringRepository(uow.session).signup(
                opportunity, citizen, now=NOW
            )
            return outcome.status, outcome.position

    # The first citizen taps twice: one place, and "already".
    outcomes = await asyncio.gather(*(sign_up(citizen) for citizen in [citizens[0], *citizens]))
    statuses = [status for status, _ in outcomes]
    assert statuses.count("confirmed") == 3 and statuses.count("already") == 1
    positions = sorted(position for status, position in outcomes if status == "waitlisted")
    assert positions == [1, 2, 3, 4, 5]
    async with database.uow() as uow:
        stored = await VolunteeringRepository(uow.session).opportunity_by_id(opportunity)
    assert stored is not None and (stored.confirmed, stored.waitlisted) == (3, 5)


async def test_a_citizen_sees_active_signups_for_opportunities_not_yet_ended(
    database: Database,
) -> None:
    citizen, other = await make_citizens(database, 2)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        later = await make_opportunity(repo, "later", starts_at=NOW + 3 * DAY)
        full = await make_opportunity(repo, "full", slots=1, starts_at=NOW + 2 * DAY)
        soon = await make_opportunity(repo, "soon", starts_at=NOW + DAY)
        called_off = await make_opportunity(repo, "called-off", starts_at=NOW + 4 * DAY)
        ended = await make_opportunity(repo, "ended", starts_at=NOW + timedelta(hours=1))
        left = await make_opportunity(repo, "left", starts_at=NOW + 5 * DAY)
        await repo.signup(full.id, other, now=NOW)
        for opportunity in (later, full, soon, called_off, ended, left):
            await repo.signup(opportunity.id, citizen, now=NOW)
        await repo.cancel_opportunity(called_off.id)
        leaving = await repo.signup(left.id, citizen, now=NOW)
        assert leaving.signup_id is not None
        await repo.cancel_signup(leaving.signup_id, citizen, now=NOW)
    async with database.uow() as uow:
        listed = await VolunteeringRepository(uow.session).signups_for_citizen(
            citizen, now=NOW + 4 * timedelta(hours=1)
        )
    assert [
        (item.opportunity_code, item.status, item.position, item.opportunity_status)
        for item in listed
    ] == [
        ("soon", "confirmed", 0, "scheduled"),
        ("full", "waitlisted", 1, "scheduled"),
        ("later", "confirmed", 0, "scheduled"),
        ("called-off", "confirmed", 0, "cancelled"),
    ]
    first = listed[0]
    assert first.titles == {"en": "Title soon", "fr": "Titre soon"} and first.place == "Town hall"
    assert first.starts_at == NOW + DAY and first.ends_at == NOW + DAY + timedelta(hours=2)
    assert first.opportunity_id == soon.id and first.created_at == NOW


async def test_coordinators_see_the_list_in_order_and_record_attendance(
    database: Database,
) -> None:
    citizens = await make_citizens(database, 4)
    opportunity = await opportunity_with_slots(database, 2)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        ids = [await signed_up(repo, opportunity, citizen) for citizen in citizens]
        pseudonyms = [await pseudonym(uow, citizen) for citizen in citizens]
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        listed = await repo.signups_for_opportunity(opportunity)
        assert [(item.signup_id, item.status, item.position) for item in listed] == [
            (ids[0], "confirmed", 0),
            (ids[1], "confirmed", 0),
            (ids[2], "waitlisted", 1),
            (ids[3], "waitlisted", 2),
        ]
        assert [item.pseudonym for item in listed] == pseudonyms
        assert [item.citizen_id for item in listed] == citizens
        assert await repo.record_attendance(ids[0], attended=True, hours=2.5)
        assert await repo.record_attendance(ids[1], attended=False, hours=3)
        with pytest.raises(ValueError, match="negative"):
            await repo.record_attendance(ids[0], attended=True, hours=-1)
        assert not await repo.record_attendance(ids[3] + 100, attended=True, hours=1)
        await repo.cancel_signup(ids[3], citizens[3], now=NOW)
        assert not await repo.record_attendance(ids[3], attended=True, hours=1)
    async with database.uow() as uow:
        listed = await VolunteeringRepository(uow.session).signups_for_opportunity(opportunity)
    assert [(item.attended, item.hours) for item in listed] == [
        (True, 2.5),
        (False, None),
        (None, None),
    ]


async def test_export_holds_the_profile_and_every_signup(database: Database) -> None:
    citizen, other = await make_citizens(database, 2)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        await repo.save_profile(
            citizen,
            skills=["food"],
            areas=["east"],
            availability=["weekday_evening"],
            contact_consent=True,
            now=NOW,
        )
        shift = await make_opportunity(repo, "shift", slots=1)
        kept = await repo.signup(shift.id, citizen, now=NOW)
        await repo.signup(shift.id, other, now=NOW)
        assert kept.signup_id is not None
        await repo.record_attendance(kept.signup_id, attended=True, hours=2)
        await repo.cancel_signup(kept.signup_id, citizen, now=NOW + timedelta(minutes=5))
        exported = await repo.export_for_citizen(citizen)
    assert json.loads(json.dumps(exported)) == exported
    assert exported == [
        {
            "kind": "volunteer_profile",
            "skills": ["food"],
            "areas": ["east"],
            "availability": ["weekday_evening"],
            "contact_consent": True,
            "updated_at": NOW.isoformat(),
        },
        {
            "kind": "volunteer_signup",
            "id": kept.signup_id,
            "opportunity": "shift",
            "titles": {"en": "Title shift", "fr": "Titre shift"},
            "place": "Town hall",
            "starts_at": (NOW + DAY).isoformat(),
            "ends_at": (NOW + DAY + timedelta(hours=2)).isoformat(),
            "status": "cancelled",
            "signed_up_at": NOW.isoformat(),
            "cancelled_at": (NOW + timedelta(minutes=5)).isoformat(),
            "attended": True,
            "hours": 2.0,
        },
    ]


async def test_anonymising_deletes_the_profile_and_detaches_signups(database: Database) -> None:
    citizen, other = await make_citizens(database, 2)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        await repo.save_profile(
            citizen, skills=[], areas=[], availability=[], contact_consent=False, now=NOW
        )
        first = await make_opportunity(repo, "first", slots=1)
        second = await make_opportunity(repo, "second", slots=1)
        await repo.signup(first.id, citizen, now=NOW)
        await repo.signup(second.id, citizen, now=NOW)
        await repo.signup(second.id, other, now=NOW)
    async with database.uow() as uow:
        touched = await VolunteeringRepository(uow.session).anonymise_citizen(citizen)
    assert touched == 3
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        assert await repo.profile(citizen) is None
        assert await repo.export_for_citizen(citizen) == []
        assert await repo.signups_for_citizen(citizen, now=NOW) == []
        listed = await repo.signups_for_opportunity(second.id)
        assert [(item.citizen_id, item.pseudonym) for item in listed] == [
            (None, None),
            (other, listed[1].pseudonym),
        ]
        stored = await repo.opportunity_by_id(first.id)
        assert stored is not None and stored.confirmed == 1
        remaining = await uow.session.scalar(
            select(Opportunity.id).where(Opportunity.code == "first")
        )
        assert remaining == first.id
        assert await repo.anonymise_citizen(citizen) == 0


async def test_promotion_skips_waiting_signups_of_erased_citizens(database: Database) -> None:
    confirmed, erased, waiting = await make_citizens(database, 3)
    opportunity = await opportunity_with_slots(database, 1)
    async with database.uow() as uow:
        repo = VolunteeringRepository(uow.session)
        place = await signed_up(repo, opportunity, confirmed)
        await signed_up(repo, opportunity, erased)
        behind = await signed_up(repo, opportunity, waiting)
        await repo.anonymise_citizen(erased)
        outcome = await repo.cancel_signup(place, confirmed, now=NOW)
    assert outcome.promoted is not None
    assert (outcome.promoted.signup_id, outcome.promoted.citizen_id) == (behind, waiting)
