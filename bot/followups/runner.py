"""The follow-up runner: claims due follow-ups and turns each into outbox messages.

Claims are atomic and leased (see :mod:`storage.repositories.followups`), so any
number of bot processes may run a runner on one database: each follow-up runs once,
and one a crashed process had claimed is taken over when its lease runs out.

Each follow-up is then handled in a transaction of its own that first re-takes the
row (locked on PostgreSQL), decides — the citizen stopped us, the condition no
longer holds, it is night, the citizen is busy in another conversation — and then
starts the flow (saving its session) or composes the message, queues what the
citizen would see in the outbox and marks the row done, all in one commit.

APScheduler (in memory) only wakes the runner: time itself comes from the injected
clock, so tests call :meth:`FollowUpRunner.run_due` after moving a ManualClock.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.conversation.render import render
from bot.followups.buttons import cant_come_data, start_flow_data
from bot.followups.facts import Facts, report_facts, signup_facts
from bot.followups.schedule import (
    REPORT,
    SIGNUP,
    builtin_campaigns,
    citizen_zone,
    delivery_time,
    parse_moment,
    retry_delay,
)
from bot.leased import DEFAULT_LEASE, MAX_ATTEMPTS, LeasedRunner
from bot.outbox import enqueue
from bot.runtime.context import Services
from dialogs.campaigns import Campaigns, MessageAction, Rule, StartFlow
from dialogs.conditions import evaluate
from dialogs.templates import render as render_template
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.followups import FollowUpRecord, FollowUpRepository

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
MAX_BATCHES = 100
OUTBOX_KIND = "followup"


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How one follow-up ended this time."""

    outcome: str
    enqueued: int = 0


class FollowUpRunner(LeasedRunner[FollowUpRecord]):
    """Runs due follow-ups for one process; ``worker_id`` names its claims."""

    job_id = "followups"
    job_name = "follow-ups"
    what = "follow-up"
    default_interval = DEFAULT_INTERVAL
    default_batch_size = 50
    max_batches = MAX_BATCHES

    def __init__(
        self,
        services: Services,
        *,
        worker_id: str,
        campaigns: Campaigns | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(
            services,
            worker_id=worker_id,
            lease=lease,
            batch_size=batch_size,
            max_attempts=max_attempts,
        )
        self.campaigns = campaigns or builtin_campaigns()

    def _claims(self, uow: UnitOfWork) -> FollowUpRepository:
        return uow.repos.followups

    def _due_signal(self) -> asyncio.Event:
        return self.services.signals.followups_due

    async def handle(self, record: FollowUpRecord) -> str | None:
        """Handle one claimed follow-up; returns its outcome (None if it was taken over)."""
        services = self.services
        try:
            async with services.database.uow() as uow:
                held = await uow.repos.followups.hold(record.id, self.worker_id)
                if held is None:
                    return None
                verdict = await self._handle(uow, held)
        except Exception:
            # Never the citizen's text: only which follow-up and which rule.
            log.exception("follow-up %s (rule %s) failed", record.id, record.rule)
            await self._after_failure(record)
            return "error"
        if verdict.enqueued:
            services.signals.outbox_pending.set()
        log.debug("follow-up %s (rule %s): %s", record.id, record.rule, verdict.outcome)
        return verdict.outcome

    async def _after_failure(self, record: FollowUpRecord) -> None:
        now = self.services.clock.now()
        async with self.services.database.uow() as uow:
            repo = uow.repos.followups
            if record.attempts >= self.max_attempts:
                await repo.finish(record.id, self.worker_id, outcome="error", now=now, failed=True)
            else:
                due = now + retry_delay(record.attempts)
                await repo.postpone(record.id, self.worker_id, due_at=due, outcome="retrying")

    # --- deciding ---------------------------------------------------------------------

    async def _handle(self, uow: UnitOfWork, row: FollowUpRecord) -> _Verdict:
        services = self.services
        repo = uow.repos.followups
        now = services.clock.now()
        rule = self.campaigns.get(row.rule)
        deadline = parse_moment(row.payload.get("deadline"))

        async def finish(outcome: str) -> _Verdict:
            await repo.finish(row.id, self.worker_id, outcome=outcome, now=now)
            return _Verdict(outcome)

        async def postpone(due: datetime, outcome: str, **changes: Any) -> _Verdict:
            if deadline is not None and due >= deadline:
                return await finish("too_late")
            payload = {**row.payload, **changes}
            await repo.postpone(
                row.id, self.worker_id, due_at=due, payload=payload, outcome=outcome
            )
            return _Verdict(outcome)

        if rule is None:
            return await finish("rule_removed")
        if deadline is not None and now >= deadline:
            return await finish("too_late")
        citizen = None
        if row.citizen_id is not None:
            citizen = await uow.repos.citizens.by_id(row.citizen_id)
        if citizen is None or citizen.telegram_id is None:
            return await finish("no_citizen")
        if citizen.stopped_at is not None:
            return await finish("stopped")
        if citizen.unreachable_at is not None:
            return await finish("unreachable")
        zone = citizen_zone(citizen, services.conversations.timezone) or UTC
        facts = await self._facts(uow, rule, row, citizen, zone, now)
        if facts is None:
            return await finish("subject_gone")
        if rule.if_ is not None and not rule.if_.evaluate(facts.resolve):
            return await finish("condition_false")

        deliver = delivery_time(rule, now, zone)
        if deliver > now:
            return await postpone(deliver, "night")

        session = await uow.repos.sessions.get(citizen.id)
        busy = session is not None and session.expires_at > now
        if busy and rule.when_busy == "skip":
            return await finish("busy_skipped")
        if busy and rule.when_busy == "wait":
            waits = int(row.payload.get("waits") or 0)
            if waits >= rule.waiting.at_most:
                return await finish("busy_gave_up")
            retry = delivery_time(rule, now + rule.waiting.every, zone)
            return await postpone(retry, "busy_waiting", waits=waits + 1)

        if rule.start_flow is not None:
            methods, outcome = await self._start_flow(uow, rule.start_flow, citizen, facts)
        else:
            assert rule.message is not None
            methods, outcome = self._message(rule.message, row, citizen, facts), "sent"
        enqueued = await enqueue(
            uow,
            methods,
            chat_id=citizen.telegram_id,
            citizen_id=citizen.id,
            kind=OUTBOX_KIND,
            now=now,
            idempotency_key=f"followup:{row.id}",
        )
        await repo.finish(row.id, self.worker_id, outcome=outcome, now=now)
        return _Verdict(outcome, len(enqueued))

    async def _facts(
        self,
        uow: UnitOfWork,
        rule: Rule,
        row: FollowUpRecord,
        citizen: CitizenRecord,
        zone: tzinfo,
        now: datetime,
    ) -> Facts | None:
        if rule.subject == REPORT and row.subject_type == REPORT:
            return await report_facts(
                uow,
                row.subject_id,
                citizen,
                zone=zone,
                now=now,
                translator=self.services.translator,
            )
        if rule.subject == SIGNUP and row.subject_type == SIGNUP:
            return await signup_facts(uow, row.subject_id, citizen, zone=zone)
        return None

    # --- acting -----------------------------------------------------------------------

    async def _start_flow(
        self, uow: UnitOfWork, start: StartFlow, citizen: CitizenRecord, facts: Facts
    ) -> tuple[list[TelegramMethod[Any]], str]:
        """Start the flow for the citizen (replacing an open conversation: the rule's
        busy policy allowed it); its first messages go to the outbox."""
        services = self.services
        assert citizen.telegram_id is not None
        prefill = {key: evaluate(value.expr, facts.resolve) for key, value in start.prefill.items()}
        try:
            turn = await services.conversations.start(uow, citizen, start.flow, prefill=prefill)
        except LookupError:
            return [], "flow_unavailable"
        closing = None
        if turn.ended:
            menu = await services.main_menu(uow, citizen.language)
            closing = (menu, services.translator.text(citizen.language, "menu.prompt"))
        methods = render(turn.messages, chat_id=citizen.telegram_id, closing=closing)
        methods += [SendMessage(chat_id=chat, text=text) for chat, text in turn.notices]
        return methods, "started"

    def _message(
        self, message: MessageAction, row: FollowUpRecord, citizen: CitizenRecord, facts: Facts
    ) -> list[TelegramMethod[Any]]:
        assert citizen.telegram_id is not None
        languages = self.services.translator.languages
        language = citizen.language
        text = render_template(message.text.get(language, languages), facts.text)
        buttons = []
        for button in message.buttons:
            if button.action == "cant_come":
                data = cant_come_data(row.subject_id)
            else:
                data = start_flow_data(str(button.flow))
            buttons.append(
                [
                    InlineKeyboardButton(
                        text=button.label.get(language, languages), callback_data=data
                    )
                ]
            )
        markup = InlineKeyboardMarkup(inline_keyboard=buttons) if buttons else None
        return [SendMessage(chat_id=citizen.telegram_id, text=text, reply_markup=markup)]
