"""The "is it fixed?" follow-ups of reports, driven by moving the clock.

The runner is called directly (APScheduler only wakes it in production); what it
decides is read from the outbox, and delivered with a small helper where the
citizen must answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.followups.runner import FollowUpRunner
from bot.usecases.reports import change_report_status
from storage.models import Rating
from tests.followups.support import (
    deliver_outbox,
    followups,
    greet,
    queued,
    record_of,
    report_by_flow,
    set_timezone,
)
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

PARIS = ZoneInfo("Europe/Paris")
REPORTER = {"id": 9601, "first_name": "Nora", "language_code": "en"}
NEIGHBOUR = {"id": 9602, "first_name": "Léa", "language_code": "fr"}
MANAGER = {"id": 9603, "first_name": "Max", "language_code": "en"}


async def test_is_it_fixed_four_weeks_later_in_the_morning_then_the_rating(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 19, 30, tzinfo=UTC))  # 20:30 in Paris
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        database = runtime.services.database
        runner = FollowUpRunner(runtime.services, worker_id="test-runner")
        citizen = Citizen(emulator_server.client, REPORTER)
        reference = await report_by_flow(citizen)

        (check,) = await followups(database, rule="fixed_check_open")
        # 28 days later it is 20:30 in Paris: too late, so 09:00 the next morning.
        assert check.due_at == datetime(2026, 2, 3, 8, 0, tzinfo=UTC)
        assert check.status == "pending" and check.payload["zone"] == "Europe/Paris"

        clock.set(datetime(2026, 2, 2, 19, 30, tzinfo=UTC))
        assert await runner.run_due() == 0
        clock.set(datetime(2026, 2, 3, 7, 59, tzinfo=UTC))
        assert await runner.run_due() == 0
        clock.set(datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
        assert await runner.run_due() == 1
        assert await runner.run_due() == 0  # done: never twice

        (question,) = await queued(database, kind="followup")
        assert question.chat_id == REPORTER["id"]
        assert question.idempotency_key == f"followup:{check.id}#0"
        for fragment in ("Is it fixed?", reference, "Street lighting", "12 Rue Haute", "5 Jan"):
            assert fragment in question.text
        assert [text for text, _ in question.buttons][:4] == [
            "✅ Fixed",
            "🌓 Partly fixed",
            "❌ Not fixed",
            "🤷 Don't know",
        ]
        (done,) = await followups(database, rule="fixed_check_open")
        assert (done.status, done.outcome, done.attempts) == ("done", "started", 1)

        await deliver_outbox(runtime)
        await citizen.tap("✅ Fixed", expect="Great, thank you")
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None and report.status == "fixed"
            kinds = [event.kind for event in await uow.repos.reports.history(report.id)]
        assert kinds == ["created", "fix_fixed", "status_changed"]

        # "Fixed" leads into rating the service, pre-filled: no "which service?".
        (rating,) = await followups(database, rule="rate_after_fix")
        assert rating.due_at == clock.now()
        assert await runner.run_due() == 1
        first = (await queued(database, kind="followup"))[-1]
        assert "Overall, how satisfied" in first.text
        assert "Which service" not in first.text
        await deliver_outbox(runtime)
        await citizen.tap("5", expect="Would you tell us a little more")
        await citizen.tap("No, thanks", expect="Anything else")
        await citizen.send("Quick repair, thanks!", expect="Thank you for your feedback")
        async with database.uow() as uow:
            (stored,) = (await uow.session.scalars(select(Rating))).all()
        assert (stored.overall, stored.report_id, stored.comment) == (
            5,
            report.id,
            "Quick repair, thanks!",
        )
        assert stored.service_id == report.service_id


async def test_not_fixed_after_the_fix_reopens_tells_the_team_and_asks_again(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        services = runtime.services
        database = services.database
        runner = FollowUpRunner(services, worker_id="test-runner")
        reporter = Citizen(emulator_server.client, REPORTER)
        reference = await report_by_flow(reporter)
        neighbour = await greet(runtime, Citizen(emulator_server.client, NEIGHBOUR))
        manager = await greet(runtime, Citizen(emulator_server.client, MANAGER))
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None
            await uow.repos.reports.follow(report.id, neighbour.id, now=clock.now())
            await uow.repos.staff.grant(
                manager.id, "manager", service_id=report.service_id, by="test", now=clock.now()
            )

        # A manager marks it fixed: the reporter and the neighbour hear it in their language.
        fixed_at = clock.advance(timedelta(days=2))
        async with database.uow() as uow:
            change = await change_report_status(
                uow,
                report.id,
                "fixed",
                "manager:C-TEST",
                "Bulb replaced",
                fixed_at,
                translator=services.translator,
                timezone=PARIS,
            )
        assert change is not None
        assert (change.from_status, change.notified, change.cancelled, change.scheduled) == (
            "open",
            2,
            1,
            1,
        )
        notices = {item.chat_id: item.text for item in await queued(database, kind="report_status")}
        assert "is now <b>fixed</b>" in notices[REPORTER["id"]]
        assert "From the team: Bulb replaced" in notices[REPORTER["id"]]
        assert "il est maintenant <b>résolu</b>" in notices[NEIGHBOUR["id"]]
        (open_check,) = await followups(database, rule="fixed_check_open")
        assert (open_check.status, open_check.outcome) == ("cancelled", "report_fixed")
        (after_fix,) = await followups(database, rule="fixed_check_after_fix")
        assert after_fix.due_at == fixed_at + timedelta(days=3)

        clock.advance(timedelta(days=3))
        assert await runner.run_due() == 1
        await deliver_outbox(runtime)
        await reporter.tap("❌ Not fixed", expect="reopened report")
        await reporter.send("Still dark every night", expect="photo of how it looks now")
        await reporter.send("/skip", expect="ask you in four weeks")
        answered_at = clock.now()

        async with database.uow() as uow:
            reopened = await uow.repos.reports.by_id(report.id)
            history = await uow.repos.reports.history(report.id)
        assert reopened is not None and reopened.status == "open"
        assert [(e.kind, e.actor, e.from_status, e.to_status) for e in history[-3:]] == [
            ("fix_not_fixed", "citizen", None, None),
            ("status_changed", "citizen", "fixed", "open"),
            ("citizen_comment", "citizen", None, None),
        ]
        assert history[-1].note == "Still dark every night"
        (told,) = await queued(database, kind="manager_notice")
        assert told.chat_id == MANAGER["id"]
        assert reference in told.text and "<b>not fixed</b>" in told.text
        reopen_notice = (await queued(database, kind="report_status", chat_id=NEIGHBOUR["id"]))[-1]
        assert "<b>ouvert</b>" in reopen_notice.text
        # The reporter, who reopened it, is not told what they just did.
        assert len(await queued(database, kind="report_status", chat_id=REPORTER["id"])) == 1
        (again,) = await followups(database, rule="fixed_check_reopened")
        assert again.status == "pending"
        assert again.due_at == answered_at + timedelta(days=28)


async def test_closing_a_report_cancels_its_checks(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        services = runtime.services
        reference = await report_by_flow(Citizen(emulator_server.client, REPORTER))
        async with services.database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None
            kwargs = {"translator": services.translator, "timezone": UTC}
            with pytest.raises(ValueError, match="unknown report status"):
                await change_report_status(
                    uow, report.id, "eaten", "staff", None, clock.now(), **kwargs
                )
            assert (
                await change_report_status(
                    uow, report.id, "open", "staff", None, clock.now(), **kwargs
                )
                is None
            )
            change = await change_report_status(
                uow, report.id, "duplicate", "staff", None, clock.now(), **kwargs
            )
        assert change is not None and change.cancelled == 1 and change.scheduled == 0
        (check,) = await followups(services.database, rule="fixed_check_open")
        assert (check.status, check.outcome) == ("cancelled", "report_closed")
        clock.advance(timedelta(days=40))
        assert await FollowUpRunner(services, worker_id="w").run_due() == 0


async def test_a_busy_citizen_is_asked_when_their_conversation_is_over(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        database = runtime.services.database
        runner = FollowUpRunner(runtime.services, worker_id="test-runner")
        citizen = Citizen(emulator_server.client, REPORTER)
        await report_by_flow(citizen)
        clock.advance(timedelta(days=28))
        await citizen.send("/rate", expect="Which service")

        assert await runner.run_due() == 1
        (waiting,) = await followups(database, rule="fixed_check_open")
        assert (waiting.status, waiting.outcome, waiting.payload["waits"]) == (
            "pending",
            "busy_waiting",
            1,
        )
        assert waiting.due_at == clock.now() + timedelta(hours=1)
        assert not await queued(database, kind="followup")
        async with database.uow() as uow:
            session = await uow.repos.sessions.get(waiting.citizen_id or 0)
        assert session is not None and session.flow_id == "rate"  # left alone

        await citizen.send("/cancel", expect="")
        clock.advance(timedelta(hours=1))
        assert await runner.run_due() == 1
        (question,) = await queued(database, kind="followup")
        assert "Is it fixed?" in question.text


async def test_stopped_citizens_and_their_own_time_zone(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 19, 30, tzinfo=UTC))
    async with running_bot(
        database_url, emulator_server.url, clock, timezone="Europe/Paris"
    ) as runtime:
        database = runtime.services.database
        runner = FollowUpRunner(runtime.services, worker_id="test-runner")
        quebec = Citizen(emulator_server.client, REPORTER)
        record = await greet(runtime, quebec)
        await set_timezone(database, record.id, "America/Montreal")
        await report_by_flow(quebec)
        paris = Citizen(emulator_server.client, NEIGHBOUR)
        await greet(runtime, paris)
        await paris.send("/stop", expect="")
        await report_by_flow_fr(paris)

        checks = {row.citizen_id: row for row in await followups(database)}
        # 14:30 in Montreal is inside the window: due as it is; 20:30 in Paris is not.
        assert checks[record.id].due_at == datetime(2026, 2, 2, 19, 30, tzinfo=UTC)
        paris_record = await record_of(database, NEIGHBOUR["id"])
        assert checks[paris_record.id].due_at == datetime(2026, 2, 3, 8, 0, tzinfo=UTC)

        # The bot was down all night: at 08:00 UTC it is 03:00 in Montreal, so the
        # late Montreal check waits for 09:00 there; the Paris citizen said /stop.
        clock.set(datetime(2026, 2, 3, 8, 0, tzinfo=UTC))
        assert await runner.run_due() == 2
        outcomes = {row.citizen_id: row.outcome for row in await followups(database)}
        assert outcomes == {record.id: "night", paris_record.id: "stopped"}
        (deferred,) = [row for row in await followups(database) if row.citizen_id == record.id]
        assert deferred.due_at == datetime(2026, 2, 3, 14, 0, tzinfo=UTC)
        assert not await queued(database, kind="followup")
        clock.set(datetime(2026, 2, 3, 14, 0, tzinfo=UTC))
        assert await runner.run_due() == 1
        outcomes = {row.citizen_id: row.outcome for row in await followups(database)}
        assert outcomes == {record.id: "started", paris_record.id: "stopped"}
        assert [item.chat_id for item in await queued(database, kind="followup")] == [
            REPORTER["id"]
        ]


async def report_by_flow_fr(citizen: Citizen) -> None:
    """The report flow in French, by a citizen who sent /stop (they still may report)."""
    await citizen.send("📣 Signaler un problème", expect="Que souhaitez-vous signaler")
    await citizen.tap("💡 Éclairage public", expect="Où est-ce")
    await citizen.send("3 place du Marché", expect="Pouvez-vous ajouter une photo")
    await citizen.send("Passer ➡️", expect="Décrivez le problème")
    await citizen.send("Le lampadaire clignote", expect="rester anonyme")
    await citizen.tap("Non", expect="Vérifiez votre signalement")
    await citizen.tap("✅ Envoyer le signalement", expect="Votre signalement porte le numéro")
