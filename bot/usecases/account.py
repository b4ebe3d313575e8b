"""What a citizen can see and do about their own data and commitments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.followups.schedule import SIGNUP, cancel_followups
from bot.managers.cards import redact_reporter
from bot.usecases.volunteering import schedule_promoted
from storage.db import UnitOfWork
from storage.records import CitizenRecord, ReportEventRecord, ReportRecord
from storage.repositories.volunteering import CitizenSignupRecord, PromotedSignup


@dataclass(frozen=True, slots=True)
class ReportView:
    """One report as its reporter or a follower sees it (others get less)."""

    report: ReportRecord
    history: list[ReportEventRecord]
    involved: bool


async def export_citizen_data(uow: UnitOfWork, citizen: CitizenRecord) -> dict[str, Any]:
    """Everything stored about the citizen, as one JSON-able document (/mydata)."""
    repos = uow.repos
    session = await repos.sessions.get(citizen.id)
    return {
        "citizen": await repos.citizens.export(citizen.id),
        "reports": await repos.reports.export_for_citizen(citizen.id),
        "volunteering": await repos.volunteering.export_for_citizen(citizen.id),
        "ratings": await repos.ratings.export_for_citizen(citizen.id),
        "open_conversation": None
        if session is None
        else {
            "flow": session.flow_id,
            "answers": session.state.get("answers", {}),
            "started_at": session.started_at.isoformat(),
        },
    }


async def erase_citizen(
    uow: UnitOfWork, citizen: CitizenRecord, *, now: datetime, timezone: tzinfo | None = None
) -> list[PromotedSignup]:
    """Erase the citizen's personal data (/forget).

    Their places on shifts are given up first, so the waiting list moves up (the
    promoted volunteers are returned, to be told, and get their shift's follow-ups);
    the citizen's own follow-ups are cancelled; reports and ratings stay, anonymised
    (their cards in the outbox show the pseudonym, not the name the managers saw); the
    citizen's row, profile, follows, open conversation and every message queued for
    their chat go.
    """
    repos = uow.repos
    promoted = []
    for signup in await repos.volunteering.signups_for_citizen(citizen.id, now=now):
        outcome = await repos.volunteering.cancel_signup(signup.signup_id, citizen.id, now=now)
        if outcome.promoted is not None:
            promoted.append(outcome.promoted)
            await schedule_promoted(uow, outcome.promoted, now=now, timezone=timezone)
    await repos.followups.cancel_for_citizen(citizen.id, outcome="citizen_erased", now=now)
    await repos.volunteering.anonymise_citizen(citizen.id)
    await repos.ratings.anonymise_citizen(citizen.id)
    for report in await repos.reports.for_citizen(citizen.id, limit=10_000):
        if report.citizen_id == citizen.id:
            await redact_reporter(uow, report, citizen.pseudonym)
    await repos.reports.detach_citizen(citizen.id)
    await repos.sessions.end(citizen.id)
    if citizen.telegram_id is not None:
        await repos.inbox.forget_user(citizen.telegram_id)
        # Rows addressed to their private chat but not tied to the citizen's row
        # (a message queued before the row existed, say) hold their chat id.
        await repos.outbox.forget_chat(citizen.telegram_id)
    await repos.citizens.delete(citizen.id)
    return promoted


async def report_view(uow: UnitOfWork, citizen: CitizenRecord, reference: str) -> ReportView | None:
    """A report by reference, with its history; details only for those involved."""
    report = await uow.repos.reports.by_reference(reference)
    if report is None:
        return None
    involved = await uow.repos.reports.is_follower(report.id, citizen.id)
    history = await uow.repos.reports.history(report.id)
    return ReportView(report=report, history=history, involved=involved)


async def my_shifts(
    uow: UnitOfWork, citizen: CitizenRecord, *, now: datetime
) -> list[CitizenSignupRecord]:
    """The citizen's places and waiting-list entries on shifts still to come."""
    return await uow.repos.volunteering.signups_for_citizen(citizen.id, now=now)


async def give_up_shift(
    uow: UnitOfWork,
    citizen: CitizenRecord,
    signup_id: int,
    *,
    now: datetime,
    timezone: tzinfo | None = None,
) -> tuple[bool, PromotedSignup | None]:
    """Cancel one of the citizen's sign-ups; a freed place goes to the first waiting.

    The sign-up's reminders are cancelled; the promoted volunteer gets the shift's
    follow-ups (in ``timezone`` when they have no zone of their own; without one the
    runner applies the delivery window when they come due).
    """
    outcome = await uow.repos.volunteering.cancel_signup(signup_id, citizen.id, now=now)
    if outcome.cancelled:
        await cancel_followups(uow, SIGNUP, [signup_id], outcome="signup_cancelled", now=now)
    if outcome.promoted is not None:
        await schedule_promoted(uow, outcome.promoted, now=now, timezone=timezone)
    return outcome.cancelled, outcome.promoted
