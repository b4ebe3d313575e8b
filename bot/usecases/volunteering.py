"""Changes to a volunteering shift: every signed-up volunteer is told at once.

Run in the caller's unit of work: the change, the messages (through the outbox) and
the moved or cancelled reminders are committed together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.followups.buttons import cant_come_data
from bot.followups.schedule import (
    SIGNUP,
    cancel_followups,
    citizen_zone,
    move_shift_followups,
    schedule_signup,
)
from bot.followups.texts import label, local_clock, local_moment
from bot.i18n import Translator
from bot.usecases.notify import send_later
from dialogs.campaigns import Campaigns
from storage.db import UnitOfWork
from storage.repositories.volunteering import OpportunityRecord, PromotedSignup

# Moving a shift by less than this is a correction, not news: reminders follow
# silently.
NOTICEABLE_MOVE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpportunityChange:
    """What moving or cancelling a shift did."""

    opportunity_id: int
    notified: int
    moved_followups: int
    cancelled_followups: int


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


async def _tell_volunteers(
    uow: UnitOfWork,
    opportunity: OpportunityRecord,
    *,
    text_key: str,
    key: str,
    with_button: bool,
    translator: Translator,
    timezone: tzinfo,
    now: datetime,
) -> int:
    """Every active sign-up (places and waiting list) is told, in their language."""
    told = 0
    for signup in await uow.repos.volunteering.signups_for_opportunity(opportunity.id):
        if signup.citizen_id is None:
            continue
        citizen = await uow.repos.citizens.by_id(signup.citizen_id)
        if citizen is None:
            continue
        language = citizen.language
        zone = citizen_zone(citizen, timezone) or timezone
        text = translator.text(
            language,
            text_key,
            title=label(opportunity.titles, language),
            when=local_moment(opportunity.starts_at, language, zone),
            until=local_clock(opportunity.ends_at, language, zone),
            place=opportunity.place,
        )
        markup = None
        if with_button:
            button = InlineKeyboardButton(
                text=translator.text(language, "shift.cant_come"),
                callback_data=cant_come_data(signup.signup_id),
            )
            markup = InlineKeyboardMarkup(inline_keyboard=[[button]])
        told += await send_later(
            uow,
            citizen,
            text,
            kind="shift_change",
            key=f"{key}:{signup.signup_id}",
            now=now,
            markup=markup,
        )
    return told


async def move_opportunity(
    uow: UnitOfWork,
    opportunity_id: int,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    *,
    translator: Translator,
    timezone: tzinfo,
    campaigns: Campaigns | None = None,
) -> OpportunityChange | None:
    """Move a shift. Reminders move with it; when either end moves by more than five
    minutes, every signed-up volunteer is told at once (with a "can't come" button).

    ``timezone`` is the administration's, for volunteers without one of their own.
    None when the opportunity is unknown; ``ValueError`` when it would end before it
    starts.
    """
    repos = uow.repos
    before = await repos.volunteering.opportunity_by_id(opportunity_id)
    if before is None:
        return None
    if not await repos.volunteering.update_opportunity_time(opportunity_id, starts_at, ends_at):
        return None
    after = await repos.volunteering.opportunity_by_id(opportunity_id)
    assert after is not None
    signup_ids = await repos.followups.signup_ids_of_opportunity(opportunity_id)
    moved, cancelled = await move_shift_followups(
        uow, signup_ids, starts_at=starts_at, ends_at=ends_at, now=now, campaigns=campaigns
    )
    notified = 0
    shift = max(abs(starts_at - before.starts_at), abs(ends_at - before.ends_at))
    if shift > NOTICEABLE_MOVE and after.status == "scheduled":
        notified = await _tell_volunteers(
            uow,
            after,
            text_key="shift.moved",
            key=f"shift-moved:{opportunity_id}:{_stamp(starts_at)}:{_stamp(ends_at)}",
            with_button=True,
            translator=translator,
            timezone=timezone,
            now=now,
        )
    return OpportunityChange(
        opportunity_id=opportunity_id,
        notified=notified,
        moved_followups=moved,
        cancelled_followups=cancelled,
    )


async def cancel_opportunity(
    uow: UnitOfWork,
    opportunity_id: int,
    now: datetime,
    *,
    translator: Translator,
    timezone: tzinfo,
) -> OpportunityChange | None:
    """Cancel a shift: every signed-up volunteer is told at once, their reminders go.

    None when the opportunity is unknown or already cancelled.
    """
    repos = uow.repos
    opportunity = await repos.volunteering.opportunity_by_id(opportunity_id)
    if opportunity is None or not await repos.volunteering.cancel_opportunity(opportunity_id):
        return None
    notified = await _tell_volunteers(
        uow,
        opportunity,
        text_key="shift.cancelled_notice",
        key=f"shift-cancelled:{opportunity_id}",
        with_button=False,
        translator=translator,
        timezone=timezone,
        now=now,
    )
    signup_ids = await repos.followups.signup_ids_of_opportunity(opportunity_id)
    cancelled = await cancel_followups(
        uow, SIGNUP, signup_ids, outcome="opportunity_cancelled", now=now
    )
    return OpportunityChange(
        opportunity_id=opportunity_id,
        notified=notified,
        moved_followups=0,
        cancelled_followups=cancelled,
    )


async def schedule_promoted(
    uow: UnitOfWork,
    promoted: PromotedSignup,
    *,
    now: datetime,
    timezone: tzinfo | None = None,
    campaigns: Campaigns | None = None,
) -> list[int]:
    """A waiting volunteer got a place: make sure their shift's follow-ups exist.

    Rows written at sign-up already cover it (their conditions let them through now);
    this only adds what is missing, e.g. for sign-ups older than the rules.
    """
    opportunity = await uow.repos.volunteering.opportunity_by_id(promoted.opportunity_id)
    if opportunity is None:
        return []
    return await schedule_signup(
        uow,
        signup_id=promoted.signup_id,
        citizen_id=promoted.citizen_id,
        starts_at=opportunity.starts_at,
        ends_at=opportunity.ends_at,
        now=now,
        zone=timezone,
        events=("shift_start", "shift_end"),
        campaigns=campaigns,
    )
