"""Shift follow-ups: reminders with "can't come", the waiting list, attendance, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.clock import ManualClock
from bot.followups.runner import FollowUpRunner
from bot.usecases.volunteering import cancel_opportunity, move_opportunity
from tests.followups.support import (
    add_opportunity,
    deliver_outbox,
    followups,
    greet,
    queued,
    set_timezone,
    sign_up,
)
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

PARIS = ZoneInfo("Europe/Paris")
ANA = {"id": 9701, "first_name": "Ana", "language_code": "en"}
BEA = {"id": 9702, "first_name": "Béa", "language_code": "fr"}
CY = {"id": 9703, "first_name": "Cy", "language_code": "en"}
SATURDAY_10H = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)  # 10:00 in Paris


async def test_reminders_cant_come_the_waiting_list_and_attendance(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        database = runtime.services.database
        runner = FollowUpRunner(runtime.services, worker_id="test-runner")
        ana_chat = Citizen(emulator_server.client, ANA)
        bea_chat = Citizen(emulator_server.client, BEA)
        ana, bea = await greet(runtime, ana_chat), await greet(runtime, bea_chat)
        await add_opportunity(database, code="park", starts_at=SATURDAY_10H, slots=1)
        assert (await sign_up(runtime, ana, "park"))["status"] == "confirmed"
        assert (await sign_up(runtime, bea, "park"))["status"] == "waitlisted"

        ana_rows = {r.rule: r for r in await followups(database) if r.citizen_id == ana.id}
        assert {rule: row.due_at for rule, row in ana_rows.items()} == {
            "shift_reminder_24h": datetime(2026, 1, 9, 9, 0, tzinfo=UTC),
            "shift_reminder_2h": datetime(2026, 1, 10, 7, 0, tzinfo=UTC),
            "after_shift": datetime(2026, 1, 10, 12, 0, tzinfo=UTC),
        }

        # The day before: Ana has a place and is reminded; Béa is still waiting.
        clock.set(datetime(2026, 1, 9, 8, 59, tzinfo=UTC))
        assert await runner.run_due() == 0
        clock.set(datetime(2026, 1, 9, 9, 0, tzinfo=UTC))
        assert await runner.run_due() == 2
        (reminder,) = await queued(database, kind="followup")
        assert reminder.chat_id == ANA["id"]
        for fragment in ("Tomorrow: Park clean-up", "Sat 10 Jan, 10:00", "Central Park, main gate"):
            assert fragment in reminder.text
        signup_id = ana_rows["shift_reminder_24h"].subject_id
        assert reminder.buttons == [("❌ I can't come", f"shift:x:{signup_id}")]
        outcomes = {
            r.citizen_id: r.outcome for r in await followups(database, rule="shift_reminder_24h")
        }
        assert outcomes == {ana.id: "sent", bea.id: "condition_false"}

        # "Can't come" frees the place: Béa moves up and is told.
        await deliver_outbox(runtime)
        await ana_chat.tap("❌ I can't come", expect="Your place is cancelled")
        await deliver_outbox(runtime)  # the promotion notice goes through the outbox too
        await emulator_server.client.wait_for_bot_message(
            BEA["id"], predicate=lambda m: "une place s’est libérée" in m.content
        )
        left = {
            r.rule: (r.status, r.outcome)
            for r in await followups(database)
            if r.citizen_id == ana.id
        }
        assert left == {
            "shift_reminder_24h": ("done", "sent"),
            "shift_reminder_2h": ("cancelled", "signup_cancelled"),
            "after_shift": ("cancelled", "signup_cancelled"),
        }

        # Two hours before: only Béa, now with a place, in French.
        clock.set(datetime(2026, 1, 10, 7, 0, tzinfo=UTC))
        assert await runner.run_due() == 1
        soon = (await queued(database, kind="followup"))[-1]
        assert soon.chat_id == BEA["id"]
        assert "Bientôt : Nettoyage du parc" in soon.text and "Central Park" in soon.text
        assert soon.buttons[0][0] == "❌ Je ne peux pas venir"

        # An hour after the shift: did you come, and how long?
        clock.set(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))
        assert await runner.run_due() == 1
        await deliver_outbox(runtime)
        await bea_chat.tap("Oui, j'y étais", expect="Combien d'heures")
        await bea_chat.send("1,5", expect="Merci pour votre temps")
        async with database.uow() as uow:
            opportunity = await uow.repos.volunteering.opportunity_by_code("park")
            assert opportunity is not None
            (record,) = await uow.repos.volunteering.signups_for_opportunity(opportunity.id)
        assert (record.citizen_id, record.attended, record.hours) == (bea.id, True, 1.5)


async def test_reminders_reach_each_volunteer_in_their_own_morning(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        database = runtime.services.database
        paris = await greet(runtime, Citizen(emulator_server.client, ANA))
        montreal = await greet(runtime, Citizen(emulator_server.client, CY))
        await set_timezone(database, montreal.id, "America/Montreal")
        noon = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # 13:00 in Paris, 07:00 in Montreal
        await add_opportunity(database, code="market", starts_at=noon, slots=5)
        await sign_up(runtime, paris, "market")
        await sign_up(runtime, montreal, "market")

        due = {(r.citizen_id, r.rule): r.due_at for r in await followups(database)}
        day_before = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
        assert due[(paris.id, "shift_reminder_24h")] == day_before
        # 07:00 in Montreal is before the 08:00 window: an hour later there.
        assert due[(montreal.id, "shift_reminder_24h")] == day_before + timedelta(hours=1)
        assert due[(paris.id, "shift_reminder_2h")] == noon - timedelta(hours=2)
        # 05:00 in Montreal would wait for 07:00, which is when the shift starts: none.
        assert (montreal.id, "shift_reminder_2h") not in due

        runner = FollowUpRunner(runtime.services, worker_id="test-runner")
        clock.set(day_before)
        assert await runner.run_due() == 1
        clock.set(day_before + timedelta(hours=1))
        assert await runner.run_due() == 1
        assert [item.chat_id for item in await queued(database, kind="followup")] == [
            ANA["id"],
            CY["id"],
        ]


async def test_moving_a_shift_tells_everyone_at_once_and_moves_the_reminders(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        services = runtime.services
        database = services.database
        people = [
            await greet(runtime, Citizen(emulator_server.client, user)) for user in (ANA, BEA, CY)
        ]
        opportunity = await add_opportunity(database, code="park", starts_at=SATURDAY_10H, slots=2)
        for person in people:
            await sign_up(runtime, person, "park")  # Cy is on the waiting list
        before = {r.id: r.due_at for r in await followups(database)}
        assert len(before) == 9

        moved_at = clock.advance(timedelta(hours=1))
        later = SATURDAY_10H + timedelta(hours=2)
        async with database.uow() as uow:
            change = await move_opportunity(
                uow,
                opportunity.id,
                later,
                later + timedelta(hours=2),
                moved_at,
                translator=services.translator,
                timezone=PARIS,
            )
        assert change is not None
        assert (change.notified, change.moved_followups, change.cancelled_followups) == (3, 9, 0)
        notices = await queued(database, kind="shift_change")
        assert sorted(item.chat_id for item in notices) == [ANA["id"], BEA["id"], CY["id"]]
        assert {item.not_before for item in notices} == {moved_at}  # all at once, now
        by_chat = {item.chat_id: item for item in notices}
        assert "Change of time: Park clean-up" in by_chat[ANA["id"]].text
        assert "Sat 10 Jan, 12:00 – 14:00" in by_chat[ANA["id"]].text
        assert "Changement d’horaire : Nettoyage du parc" in by_chat[BEA["id"]].text
        assert by_chat[CY["id"]].buttons[0][0] == "❌ I can't come"
        after = {r.id: r.due_at for r in await followups(database)}
        assert all(after[key] - before[key] == timedelta(hours=2) for key in before)

        # Three minutes is a correction, not news: the reminders follow quietly.
        async with database.uow() as uow:
            quiet = await move_opportunity(
                uow,
                opportunity.id,
                later + timedelta(minutes=3),
                later + timedelta(hours=2, minutes=3),
                moved_at,
                translator=services.translator,
                timezone=PARIS,
            )
        assert quiet is not None and quiet.notified == 0 and quiet.moved_followups == 9
        assert len(await queued(database, kind="shift_change")) == 3
        nudged = {r.id: r.due_at for r in await followups(database)}
        assert all(nudged[key] - after[key] == timedelta(minutes=3) for key in before)

        # Cancelled: everyone is told at once, and nothing more is sent.
        async with database.uow() as uow:
            cancelled = await cancel_opportunity(
                uow, opportunity.id, moved_at, translator=services.translator, timezone=PARIS
            )
        assert cancelled is not None
        assert (cancelled.notified, cancelled.cancelled_followups) == (3, 9)
        texts = [item.text for item in await queued(database, kind="shift_change")][3:]
        assert sum("Cancelled: Park clean-up" in text for text in texts) == 2
        assert sum("Annulé : Nettoyage du parc" in text for text in texts) == 1
        assert {r.outcome for r in await followups(database)} == {"opportunity_cancelled"}
        clock.set(later + timedelta(days=1))
        assert await FollowUpRunner(services, worker_id="w").run_due() == 0


async def test_a_shift_moved_closer_drops_reminders_whose_moment_has_passed(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        services = runtime.services
        ana = await greet(runtime, Citizen(emulator_server.client, ANA))
        opportunity = await add_opportunity(services.database, code="p", starts_at=SATURDAY_10H)
        await sign_up(runtime, ana, "p")
        # Brought forward to tomorrow morning: the 24h reminder's moment is gone.
        sooner = datetime(2026, 1, 6, 8, 0, tzinfo=UTC)
        async with services.database.uow() as uow:
            change = await move_opportunity(
                uow,
                opportunity.id,
                sooner,
                sooner + timedelta(hours=2),
                clock.now(),
                translator=services.translator,
                timezone=PARIS,
            )
        assert change is not None and change.notified == 1
        rows = {r.rule: (r.status, r.outcome, r.due_at) for r in await followups(services.database)}
        assert rows == {
            "shift_reminder_24h": ("cancelled", "shift_moved", SATURDAY_10H - timedelta(days=1)),
            "shift_reminder_2h": ("pending", None, sooner - timedelta(hours=2)),
            "after_shift": ("pending", None, sooner + timedelta(hours=3)),
        }
