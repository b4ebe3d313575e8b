"""Writing, moving and cancelling follow-up rows where events happen.

Every function here runs in the caller's unit of work, so a follow-up exists exactly
when the event that caused it was committed. Scheduling twice is harmless: a row's
idempotency key names its rule, subject and the moment of the event.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import SUPPORTED_LANGUAGES
from dialogs import builtin_registry, load_builtin_flows
from dialogs.campaigns import Campaigns, Rule, load_builtin_campaigns
from storage.db import UnitOfWork
from storage.records import CitizenRecord

REPORT: Final = "report"
SIGNUP: Final = "signup"
SIGNUP_EVENTS = ("signup_created", "shift_start", "shift_end")
SHIFT_EVENTS = ("shift_start", "shift_end")


@functools.cache
def builtin_campaigns() -> Campaigns:
    """The shipped campaign rules, checked against the shipped flows (loaded once)."""
    flows = load_builtin_flows(registry=builtin_registry(), languages=SUPPORTED_LANGUAGES)
    return load_builtin_campaigns(languages=SUPPORTED_LANGUAGES, flows=flows)


def zone_named(name: str | None) -> ZoneInfo | None:
    """The time zone called ``name``, or None when it is empty or unknown."""
    if name:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(name)
    return None


def citizen_zone(citizen: CitizenRecord | None, default: tzinfo | None) -> tzinfo | None:
    """The citizen's own time zone if they have one, else ``default``."""
    own = zone_named(citizen.timezone) if citizen is not None else None
    return own or default


def zone_key(zone: tzinfo | None) -> str | None:
    """A time zone as it is kept in a follow-up's payload (None: decided when it runs)."""
    if zone is None:
        return None
    if isinstance(zone, ZoneInfo):
        return zone.key
    if zone == UTC:
        return "UTC"
    return None


def delivery_time(rule: Rule, due: datetime, zone: tzinfo | None) -> datetime:
    """``due`` moved out of the night into the rule's window, in UTC.

    With no known zone the time is kept: the runner checks the window again when
    the follow-up comes due, in the zone it knows then.
    """
    if zone is None or rule.window.always:
        return due.astimezone(UTC)
    return rule.window.next_delivery(due.astimezone(zone)).astimezone(UTC)


def followup_key(rule_id: str, subject_type: str, subject_id: int, anchor: datetime) -> str:
    """The idempotency key of a follow-up: one per rule, subject and event moment."""
    moment = anchor.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{rule_id}/{subject_type}:{subject_id}/{moment}"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def parse_moment(value: Any) -> datetime | None:
    """A moment stored in a payload by this module, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def schedule_event(
    uow: UnitOfWork,
    *,
    event: str,
    subject_type: str,
    subject_id: int,
    citizen_id: int | None,
    anchor: datetime,
    now: datetime,
    zone: tzinfo | None,
    campaigns: Campaigns | None = None,
) -> list[int]:
    """Write a follow-up for every rule hanging on ``event`` of this subject.

    ``anchor`` is when the event happens (a shift's start, now for a new report);
    ``zone`` is the time zone to use when the citizen has none of their own (None
    leaves the delivery window to the runner). Rules whose moment has already passed,
    or that could not be delivered before their deadline, are left out. Returns the
    ids of the rows written now.
    """
    rules = (campaigns or builtin_campaigns()).for_event(event)
    if not rules or citizen_id is None:
        return []
    citizen = await uow.repos.citizens.by_id(citizen_id)
    if citizen is None or citizen.telegram_id is None:
        return []
    zone = citizen_zone(citizen, zone)
    created = []
    for rule in rules:
        due = rule.due(anchor)
        if due < now:
            continue
        latest = rule.latest(anchor)
        deliver = delivery_time(rule, due, zone)
        if latest is not None and deliver >= latest:
            continue
        new_id = await uow.repos.followups.schedule(
            rule=rule.id,
            citizen_id=citizen_id,
            subject_type=subject_type,
            subject_id=subject_id,
            due_at=deliver,
            idempotency_key=followup_key(rule.id, subject_type, subject_id, anchor),
            payload={
                "event": event,
                "anchor": _iso(anchor),
                "deadline": _iso(latest),
                "zone": zone_key(zone),
                "waits": 0,
            },
            now=now,
        )
        if new_id is not None:
            created.append(new_id)
    return created


async def schedule_signup(
    uow: UnitOfWork,
    *,
    signup_id: int,
    citizen_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    zone: tzinfo | None,
    events: Sequence[str] = SIGNUP_EVENTS,
    campaigns: Campaigns | None = None,
) -> list[int]:
    """Follow-ups of a sign-up: on its creation, before its shift starts, after it ends.

    Waiting-list sign-ups get them too; the rules' conditions hold them back until
    the volunteer has a place.
    """
    anchors = {"signup_created": now, "shift_start": starts_at, "shift_end": ends_at}
    created: list[int] = []
    for event in events:
        created += await schedule_event(
            uow,
            event=event,
            subject_type=SIGNUP,
            subject_id=signup_id,
            citizen_id=citizen_id,
            anchor=anchors[event],
            now=now,
            zone=zone,
            campaigns=campaigns,
        )
    return created


async def cancel_followups(
    uow: UnitOfWork,
    subject_type: str,
    subject_ids: Iterable[int],
    *,
    outcome: str,
    now: datetime,
    rules: Iterable[str] | None = None,
) -> int:
    """Cancel what is still to run about these subjects; returns how many."""
    return await uow.repos.followups.cancel_for_subject(
        subject_type,
        list(subject_ids),
        outcome=outcome,
        now=now,
        rules=None if rules is None else list(rules),
    )


async def move_shift_followups(
    uow: UnitOfWork,
    signup_ids: Sequence[int],
    *,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    campaigns: Campaigns | None = None,
) -> tuple[int, int]:
    """The shift of these sign-ups moved: move their pending reminders with it.

    A reminder whose new moment has passed, or that could no longer be delivered
    before its deadline, is cancelled: whoever moves a shift tells the volunteers
    at once. Returns (moved, cancelled).
    """
    rules = campaigns or builtin_campaigns()
    anchors = {"shift_start": starts_at, "shift_end": ends_at}
    moved = cancelled = 0
    stale: list[int] = []
    for row in await uow.repos.followups.for_subject(SIGNUP, signup_ids, statuses=("pending",)):
        rule = rules.get(row.rule)
        event = row.payload.get("event")
        if rule is None or event not in anchors:
            continue
        anchor = anchors[str(event)]
        latest = rule.latest(anchor)
        due = rule.due(anchor)
        deliver = delivery_time(rule, due, zone_named(row.payload.get("zone")))
        if due < now or (latest is not None and deliver >= latest):
            stale.append(row.id)
            continue
        payload = {**row.payload, "anchor": _iso(anchor), "deadline": _iso(latest), "waits": 0}
        if await uow.repos.followups.reschedule(row.id, due_at=deliver, payload=payload):
            moved += 1
    cancelled = await uow.repos.followups.cancel(stale, outcome="shift_moved", now=now)
    return moved, cancelled


def retry_delay(attempts: int) -> timedelta:
    """How long a follow-up that raised waits before it is tried again."""
    return timedelta(minutes=5) * max(1, attempts) ** 2
