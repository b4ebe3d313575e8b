"""What the runner does with a rule: busy policies, buttons, rules that went away."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.clock import ManualClock
from bot.followups.buttons import CANT_COME_PREFIX, START_FLOW_PREFIX
from bot.followups.runner import FollowUpRunner
from bot.followups.schedule import REPORT, schedule_event
from bot.handlers.account import SHIFT_PREFIX
from bot.handlers.dialog import SWITCH_PREFIX
from dialogs import builtin_registry, load_builtin_flows
from dialogs.campaigns import Campaigns, load_campaign
from tests.followups.support import followups, queued, record_of, report_by_flow
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

USER = {"id": 9801, "first_name": "Sam", "language_code": "en"}
RULES = """\
rules:
  - id: hello
    event: report_created
    offset: 1d
    window: always
    when_busy: skip
    message:
      text:
        en: "Hello {profile.first_name}: <b>{report.reference}</b> is {report.status}."
        fr: "Bonjour {profile.first_name} : <b>{report.reference}</b> est {report.status}."
      buttons:
        - label: {en: "⭐ Rate", fr: "⭐ Évaluer"}
          flow: rate
  - id: ask_now
    event: report_created
    offset: 2d
    window: always
    when_busy: interrupt
    start_flow:
      flow: fixed_check
      prefill: {report: report.reference}
"""


def custom_campaigns() -> Campaigns:
    flows = load_builtin_flows(registry=builtin_registry())
    rules = load_campaign(RULES, filename="custom.yaml", flows=flows)
    return Campaigns(
        rules={rule.id: rule for rule in rules}, files=dict.fromkeys([r.id for r in rules], "")
    )


def test_button_prefixes_match_the_handlers_that_answer_them() -> None:
    assert CANT_COME_PREFIX == SHIFT_PREFIX
    assert START_FLOW_PREFIX == SWITCH_PREFIX


async def test_skip_and_interrupt_while_the_citizen_is_in_another_flow(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    campaigns = custom_campaigns()
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        database = runtime.services.database
        citizen = Citizen(emulator_server.client, USER)
        reference = await report_by_flow(citizen)
        record = await record_of(database, USER["id"])
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None
            ids = await schedule_event(
                uow,
                event="report_created",
                subject_type=REPORT,
                subject_id=report.id,
                citizen_id=record.id,
                anchor=report.created_at,
                now=clock.now(),
                zone=UTC,
                campaigns=campaigns,
            )
            again = await schedule_event(
                uow,
                event="report_created",
                subject_type=REPORT,
                subject_id=report.id,
                citizen_id=record.id,
                anchor=report.created_at,
                now=clock.now(),
                zone=UTC,
                campaigns=campaigns,
            )
        assert len(ids) == 2 and again == []  # the same event twice: scheduled once
        runner = FollowUpRunner(runtime.services, worker_id="w", campaigns=campaigns)

        await citizen.send("⭐ Rate a service", expect="Which service")
        clock.advance(timedelta(days=1))
        assert await runner.run_due() == 1
        (skipped,) = await followups(database, rule="hello")
        assert (skipped.status, skipped.outcome) == ("done", "busy_skipped")

        clock.advance(timedelta(days=1))
        assert await runner.run_due() == 1
        (question,) = await queued(database, kind="followup")
        assert "Is it fixed?" in question.text
        async with database.uow() as uow:
            session = await uow.repos.sessions.get(record.id)
        assert session is not None and session.flow_id == "fixed_check"  # interrupted


async def test_a_message_with_a_flow_button_and_a_rule_that_went_away(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    campaigns = custom_campaigns()
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        database = runtime.services.database
        citizen = Citizen(emulator_server.client, USER)
        reference = await report_by_flow(citizen)
        record = await record_of(database, USER["id"])
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None
            await schedule_event(
                uow,
                event="report_created",
                subject_type=REPORT,
                subject_id=report.id,
                citizen_id=record.id,
                anchor=report.created_at,
                now=clock.now(),
                zone=UTC,
                campaigns=campaigns,
            )
        clock.advance(timedelta(days=1))
        runner = FollowUpRunner(runtime.services, worker_id="w", campaigns=campaigns)
        assert await runner.run_due() == 1
        (hello,) = await queued(database, kind="followup")
        assert hello.text == f"Hello Sam: <b>{reference}</b> is open."
        assert hello.buttons == [("⭐ Rate", "sw:rate")]

        # The same rows run by an instance whose rules no longer have "ask_now".
        without = Campaigns(rules={"hello": campaigns.rules["hello"]}, files={})
        clock.advance(timedelta(days=1))
        assert await FollowUpRunner(runtime.services, worker_id="v", campaigns=without).run_due()
        (gone,) = await followups(database, rule="ask_now")
        assert (gone.status, gone.outcome) == ("done", "rule_removed")
        assert len(await queued(database, kind="followup")) == 1
