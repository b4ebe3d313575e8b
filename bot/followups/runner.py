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
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

# APScheduler 3 ships no type information.
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]

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
from bot.outbox import enqueue
from bot.runtime.context import Services
from dialogs.campaigns import Campaigns, MessageAction, Rule, StartFlow
from dialogs.conditions import evaluate
from dialogs.templates import render as render_template
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.followups import FollowUpRecord

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
DEFAULT_INTERVAL = 30.0
MAX_ATTEMPTS = 5
# One run_due call stops after this many batches, so a flood cannot starve the loop.
MAX_BATCHES = 100
OUTBOX_KIND = "followup"


def default_worker_id() -> str:
    """A name for this process's claims: host and process id."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class _Verdict:
    """How one follow-up ended this time."""

    outcome: str
    enqueued: int = 0


class FollowUpRunner:
    """Runs due follow-ups for one process; ``worker_id`` names its claims."""

    def __init__(
        self,
        services: Services,
        *,
        worker_id: str,
        campaigns: Campaigns | None = None,
        lease: timedelta = DEFAULT_LEASE,
        batch_size: int = 50,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not worker_id or len(worker_id) > 64:
            raise ValueError("worker_id must be 1-64 characters")
        self.services = services
        self.worker_id = worker_id
        self.campaigns = campaigns or builtin_campaigns()
        self.lease = lease
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self._running = asyncio.Lock()

    # --- waking up --------------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler, *, interval: float = DEFAULT_INTERVAL) -> None:
        """Have ``scheduler`` wake the runner every ``interval`` seconds (first run now)."""
        scheduler.add_job(
            self.wake,
            "interval",
            seconds=interval,
            id=f"followups:{self.worker_id}",
            name="follow-ups",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            replace_existing=True,
        )

    async def wake(self) -> int:
        """One scheduled wake-up: run what is due, never raise (the scheduler would log it
        without context)."""
        try:
            return await self.run_due()
        except Exception:
            log.exception("follow-up run failed")
            return 0

    async def run(self, stopping: asyncio.Event, *, interval: float = DEFAULT_INTERVAL) -> None:
        """Run until ``stopping``: an in-memory APScheduler wakes the runner every
        ``interval`` seconds, and ``services.signals.followups_due`` wakes it at once."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        self.start(scheduler, interval=interval)
        scheduler.start()
        signal = self.services.signals.followups_due
        try:
            while not stopping.is_set():
                waiters = {
                    asyncio.ensure_future(stopping.wait()),
                    asyncio.ensure_future(signal.wait()),
                }
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                if signal.is_set() and not stopping.is_set():
                    signal.clear()
                    await self.wake()
        finally:
            scheduler.shutdown(wait=False)

    # --- claiming ---------------------------------------------------------------------

    async def run_due(self) -> int:
        """Claim and handle every follow-up due now; returns how many were claimed."""
        async with self._running:
            total = 0
            for _ in range(MAX_BATCHES):
                claimed = await self.claim()
                total += len(claimed)
                for record in claimed:
                    await self.handle(record)
                if len(claimed) < self.batch_size:
                    break
            return total

    async def claim(self) -> list[FollowUpRecord]:
        """Take a batch of due follow-ups (committed at once, so the lease starts now)."""
        now = self.services.clock.now()
        async with self.services.database.uow() as uow:
            return await uow.repos.followups.claim_due(
                now=now,
                worker_id=self.worker_id,
                lease_until=now + self.lease,
                limit=self.batch_size,
            )

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
