"""A report's life after it is made: status changes, "is it fixed?" answers, details.

Each function runs in the caller's unit of work: the status, its history line, the
messages to the people concerned (through the outbox) and the follow-ups it
schedules or cancels are committed together, or not at all.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final, Literal

from aiogram.methods import SendMessage

from bot.followups.schedule import REPORT, cancel_followups, schedule_event
from bot.followups.texts import label
from bot.i18n import Translator
from bot.outbox import enqueue
from bot.statetable import (
    CLOSING_STATUSES,
    FIXED,
    REPORT_STATUSES,
    StateTable,
    TransitionNotAllowedError,
    current_table,
)
from bot.usecases.notify import send_later
from dialogs.campaigns import Campaigns
from storage.db import UnitOfWork
from storage.records import CitizenRecord, ReportRecord
from storage.repositories.reports import OPEN_STATUSES

REOPENED: Final = "open"

FixAnswer = Literal["fixed", "partly", "not_fixed", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    """What a status change did: who was told, which follow-ups came and went."""

    report_id: int
    reference: str
    from_status: str
    to_status: str
    notified: int
    scheduled: int
    cancelled: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FixAnswerOutcome:
    """The report after the reporter answered "is it fixed?"."""

    status: str
    reopened: bool
    managers_told: int


def status_text(
    translator: Translator, language: str, status: str, table: StateTable | None = None
) -> str:
    """A status in the reader's words: the state table's label if it has one, else
    the catalogue's, else the code itself."""
    if table is not None:
        return table.label(translator, language, status)
    key = f"status.{status}"
    return translator.text(language, key) if translator.has(key) else status


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


async def notify_service_managers(
    uow: UnitOfWork,
    service_id: int,
    *,
    report: ReportRecord,
    key: str,
    values: dict[str, object],
    translator: Translator,
    now: datetime,
) -> int:
    """Tell the managers of a service about one of its reports; returns how many.

    Managers are the people holding the manager role for the service (staff roles),
    each told in their own language through the outbox with the text ``key`` (which
    receives ``reference`` and ``category`` besides ``values``). Reporters' identities
    are never included. A service nobody manages yet has no one to tell: 0.
    """
    told = 0
    for manager in await uow.repos.staff.managers_of(service_id):
        language = manager.language
        text = translator.text(
            language,
            key,
            reference=report.reference,
            category=label(report.category_names, language) or report.category_code,
            **values,
        )
        ids = await enqueue(
            uow,
            [SendMessage(chat_id=manager.telegram_id, text=text)],
            chat_id=manager.telegram_id,
            citizen_id=manager.citizen_id,
            kind="manager_notice",
            now=now,
            idempotency_key=f"{key}:{report.id}:{_stamp(now)}:{manager.citizen_id}",
        )
        told += bool(ids)
    return told


async def _tell_followers(
    uow: UnitOfWork,
    report: ReportRecord,
    status: str,
    note: str | None,
    *,
    translator: Translator,
    now: datetime,
    exclude: Collection[int] = (),
) -> int:
    """The reporter and followers learn the new status, each in their language."""
    table = await current_table(uow)
    told = 0
    for citizen_id in await uow.repos.reports.follower_ids(report.id):
        if citizen_id in exclude:
            continue
        citizen = await uow.repos.citizens.by_id(citizen_id)
        if citizen is None:
            continue
        language = citizen.language
        text = translator.text(
            language,
            "report.status_notice",
            reference=report.reference,
            category=label(report.category_names, language) or report.category_code,
            status=status_text(translator, language, status, table),
        )
        if note:
            text += translator.text(language, "report.status_note", note=note)
        told += await send_later(
            uow,
            citizen,
            text,
            kind="report_status",
            # The status is part of the key: two changes in the same instant (a
            # quick "in progress" then "fixed") are two pieces of news, not one.
            key=f"report-status:{report.id}:{status}:{_stamp(now)}:{citizen_id}",
            now=now,
        )
    return told


async def change_report_status(
    uow: UnitOfWork,
    report_id: int,
    new_status: str,
    actor: str,
    note: str | None,
    now: datetime,
    *,
    translator: Translator,
    timezone: tzinfo,
    campaigns: Campaigns | None = None,
) -> StatusChange | None:
    """Change a report's status (the way managers will): record it, tell the reporter
    and followers through the outbox, and schedule or cancel its follow-ups.

    Fixed: pending checks are replaced by the "did it hold?" check of the
    ``report_fixed`` rules. Closed (or a duplicate, or not ours): nothing more to ask.
    Back to an open status from fixed or closed: the ``report_reopened`` rules.
    ``timezone`` is the administration's, for citizens without one of their own.
    Returns None when the report is unknown or already has this status; raises
    ``ValueError`` for a status that does not exist, and TransitionNotAllowedError
    (a ValueError) when the state table does not let this status follow the
    report's (nothing is changed).
    """
    if new_status not in REPORT_STATUSES:
        raise ValueError(f"unknown report status {new_status!r}")
    repos = uow.repos
    report = await repos.reports.by_id(report_id)
    if report is None or report.status == new_status:
        return None
    if not (await current_table(uow)).allows(report.status, new_status):
        raise TransitionNotAllowedError(report.status, new_status)
    previous = await repos.reports.set_status(
        report_id, new_status, actor=actor, note=note, now=now
    )
    if previous is None:
        return None
    notified = await _tell_followers(uow, report, new_status, note, translator=translator, now=now)
    cancelled = scheduled = 0
    event = None
    if new_status == FIXED:
        cancelled = await cancel_followups(
            uow, REPORT, [report_id], outcome="report_fixed", now=now
        )
        event = "report_fixed"
    elif new_status in CLOSING_STATUSES:
        cancelled = await cancel_followups(
            uow, REPORT, [report_id], outcome="report_closed", now=now
        )
    elif previous not in OPEN_STATUSES:
        cancelled = await cancel_followups(
            uow, REPORT, [report_id], outcome="report_reopened", now=now
        )
        event = "report_reopened"
    if event is not None:
        scheduled = len(
            await schedule_event(
                uow,
                event=event,
                subject_type=REPORT,
                subject_id=report_id,
                citizen_id=report.citizen_id,
                anchor=now,
                now=now,
                zone=timezone,
                campaigns=campaigns,
            )
        )
    return StatusChange(
        report_id=report_id,
        reference=report.reference,
        from_status=previous,
        to_status=new_status,
        notified=notified,
        scheduled=scheduled,
        cancelled=cancelled,
    )


async def record_fix_answer(
    uow: UnitOfWork,
    citizen: CitizenRecord,
    reference: str,
    answer: FixAnswer,
    now: datetime,
    *,
    translator: Translator,
    timezone: tzinfo,
    campaigns: Campaigns | None = None,
) -> FixAnswerOutcome | None:
    """The reporter's answer to "is it fixed?".

    Fixed: the report is marked fixed (if a manager had not already) and the
    ``report_confirmed_fixed`` rules follow (rating the service). Not fixed, or only
    partly: the report is open again, its managers are told, and the
    ``report_reopened`` rules ask again later. Don't know: only noted. Every answer
    is a line of the report's history. None when the citizen does not follow the
    report (or it is gone).
    """
    repos = uow.repos
    report = await repos.reports.by_reference(reference)
    if report is None or not await repos.reports.is_follower(report.id, citizen.id):
        return None
    await repos.reports.add_event(
        report.id, kind=f"fix_{answer}", actor="citizen", note=None, now=now
    )
    if answer == "unknown":
        return FixAnswerOutcome(status=report.status, reopened=False, managers_told=0)
    # This answer settles the checks still waiting; the rules below ask what is next.
    await cancel_followups(uow, REPORT, [report.id], outcome="answered", now=now)
    exclude = (citizen.id,)
    status, reopened, told = report.status, False, 0
    if answer == "fixed":
        event = "report_confirmed_fixed"
        if report.status != FIXED:
            await repos.reports.set_status(report.id, FIXED, actor="citizen", note=None, now=now)
            await _tell_followers(
                uow, report, FIXED, None, translator=translator, now=now, exclude=exclude
            )
            status = FIXED
    else:
        event = "report_reopened"
        if report.status not in OPEN_STATUSES:
            await repos.reports.set_status(report.id, REOPENED, actor="citizen", note=None, now=now)
            await _tell_followers(
                uow, report, REOPENED, None, translator=translator, now=now, exclude=exclude
            )
            status, reopened = REOPENED, True
        told = await notify_service_managers(
            uow,
            report.service_id,
            report=report,
            key=f"manager.report_{answer}",
            values={},
            translator=translator,
            now=now,
        )
    await schedule_event(
        uow,
        event=event,
        subject_type=REPORT,
        subject_id=report.id,
        citizen_id=citizen.id,
        anchor=now,
        now=now,
        zone=timezone,
        campaigns=campaigns,
    )
    return FixAnswerOutcome(status=status, reopened=reopened, managers_told=told)


async def add_report_details(
    uow: UnitOfWork,
    citizen: CitizenRecord,
    reference: str,
    *,
    comment: str | None,
    photo_file_ids: list[str],
    now: datetime,
    max_comment: int = 4000,
) -> bool:
    """A comment and photos the reporter adds to their report (after a check).

    The photos' bytes are fetched after the commit, like a new report's. False when
    the citizen does not follow the report.
    """
    repos = uow.repos
    report = await repos.reports.by_reference(reference)
    if report is None or not await repos.reports.is_follower(report.id, citizen.id):
        return False
    text = (comment or "").strip()[:max_comment]
    if text:
        await repos.reports.add_event(
            report.id, kind="citizen_comment", actor="citizen", note=text, now=now
        )
    for file_id in photo_file_ids:
        await repos.reports.add_photo(
            report.id,
            telegram_file_id=file_id,
            content_type="image/jpeg",
            data=None,
            width=None,
            height=None,
            now=now,
        )
    if photo_file_ids and not text:
        await repos.reports.add_event(
            report.id, kind="citizen_photos", actor="citizen", note=None, now=now
        )
    return True
