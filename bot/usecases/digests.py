"""Managers' digests: composing one, subscribing to them, and exporting CSV files.

Handlers, the scheduled runner and the command line call these; each takes the
unit of work it runs in and records what staff changed in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiogram.methods import SendMessage, SendPhoto, TelegramMethod
from aiogram.types import BufferedInputFile

from bot.digests.chart import render_chart
from bot.digests.compute import build_digest, build_series, format_digest, trailing_periods
from bot.digests.export import csv_text, iter_ratings_csv, iter_reports_csv
from bot.digests.schedule import DAILY, WEEKLY, Cadence, next_due
from bot.i18n import Translator
from bot.outbox import enqueue
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.digest_subscriptions import DigestSubscriptionRecord
from storage.repositories.digests import Period, SeriesPoint, ServiceInfo
from storage.repositories.staff import StaffRoles

OUTBOX_KIND: Final = "digest"
CHART_FILENAME: Final = "digest.png"
DEFAULT_HOUR: Final = 8
DEFAULT_WEEKDAY: Final = 0
DEFAULT_EXPORT_DAYS: Final = 30
# A range longer than this is refused: the files must fit in a Telegram document.
MAX_EXPORT_DAYS: Final = 366


# --- composing -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestContent:
    """A digest's text and the figures of its chart, before the chart is drawn."""

    text: str
    series: tuple[SeriesPoint, ...]


async def compose_digest(
    uow: UnitOfWork,
    translator: Translator,
    *,
    language: str,
    service_ids: Sequence[int] | None,
    period: Period,
) -> DigestContent:
    """The digest of ``period`` for these services (``None``: every active one)."""
    start, end = period
    digest = await build_digest(uow, service_ids=service_ids, start=start, end=end)
    series = await build_series(uow, service_ids=service_ids, periods=trailing_periods(start, end))
    return DigestContent(text=format_digest(digest, language, translator), series=series)


async def digest_methods(
    content: DigestContent, *, chat_id: int, language: str, translator: Translator
) -> list[TelegramMethod[Any]]:
    """The text, then the chart (drawn in a worker thread) as a photo."""
    chart = await render_chart(content.series, language, translator=translator)
    return [
        SendMessage(chat_id=chat_id, text=content.text),
        SendPhoto(
            chat_id=chat_id,
            photo=BufferedInputFile(chart, filename=CHART_FILENAME),
            caption=translator.text(language, "digest.chart.caption"),
        ),
    ]


async def queue_digest(
    uow: UnitOfWork,
    methods: Sequence[TelegramMethod[Any]],
    *,
    chat_id: int,
    citizen_id: int,
    now: datetime,
    idempotency_key: str | None = None,
) -> list[int]:
    """Put a digest's messages in the outbox (in the caller's transaction)."""
    return await enqueue(
        uow,
        methods,
        chat_id=chat_id,
        citizen_id=citizen_id,
        kind=OUTBOX_KIND,
        now=now,
        idempotency_key=idempotency_key,
    )


def on_demand_period(now: datetime, frequency: str) -> Period:
    """What ``/digest`` covers: the last day or week up to now."""
    return now - timedelta(days=1 if frequency == DAILY else 7), now


# --- whose services ----------------------------------------------------------------------


async def visible_services(uow: UnitOfWork, roles: StaffRoles) -> list[ServiceInfo]:
    """The services a staff member may see: all active ones for administrators."""
    if roles.admin:
        return await uow.repos.digests.services(None)
    if not roles.service_ids:
        return []
    return await uow.repos.digests.services(sorted(roles.service_ids))


def chosen_services(chosen: Sequence[int], roles: StaffRoles) -> list[int] | None:
    """The services a digest covers: the chosen ones the person may still see.

    ``None`` stands for every active service (an administrator who chose none).
    """
    if roles.admin:
        return sorted(chosen) if chosen else None
    allowed = roles.service_ids
    return sorted(set(chosen) & allowed) if chosen else sorted(allowed)


# --- subscriptions ------------------------------------------------------------------------


def cadence_of(subscription: DigestSubscriptionRecord) -> Cadence:
    """A subscription's frequency, weekday, hour and zone."""
    return Cadence(
        frequency=subscription.frequency,
        weekday=subscription.weekday,
        hour=subscription.hour,
        timezone=subscription.timezone,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSettings:
    """What a person chose for their digest; ``service_ids`` empty means all."""

    cadence: Cadence
    service_ids: tuple[int, ...] = ()


def default_settings(citizen: CitizenRecord, default_zone: str) -> DigestSettings:
    """Weekly, Monday 08:00 in the person's zone (or the administration's)."""
    return DigestSettings(
        cadence=Cadence(
            frequency=WEEKLY,
            weekday=DEFAULT_WEEKDAY,
            hour=DEFAULT_HOUR,
            timezone=citizen.timezone or default_zone,
        )
    )


def settings_of(subscription: DigestSubscriptionRecord) -> DigestSettings:
    """The settings a subscription holds."""
    return DigestSettings(cadence=cadence_of(subscription), service_ids=subscription.service_ids)


async def save_subscription(
    uow: UnitOfWork,
    citizen: CitizenRecord,
    settings: DigestSettings,
    *,
    now: datetime,
    change: str,
) -> DigestSubscriptionRecord:
    """Store the settings, due next at the first delivery moment after now; audited."""
    cadence = settings.cadence
    saved = await uow.repos.digest_subscriptions.save(
        citizen.id,
        frequency=cadence.frequency,
        weekday=cadence.weekday if cadence.frequency == WEEKLY else None,
        hour=cadence.hour,
        timezone=cadence.timezone,
        service_ids=settings.service_ids,
        next_due_at=next_due(cadence, now),
        now=now,
    )
    await uow.repos.staff.audit(
        actor=actor_of(citizen),
        action="digest.subscribe",
        subject=citizen.pseudonym,
        details={
            "change": change,
            "frequency": saved.frequency,
            "weekday": saved.weekday,
            "hour": saved.hour,
            "timezone": saved.timezone,
            "services": list(saved.service_ids),
        },
        now=now,
    )
    return saved


async def unsubscribe(uow: UnitOfWork, citizen: CitizenRecord, *, now: datetime) -> bool:
    """Stop the person's digests; audited. False if there was no subscription."""
    removed = await uow.repos.digest_subscriptions.delete(citizen.id)
    if removed:
        await uow.repos.staff.audit(
            actor=actor_of(citizen),
            action="digest.unsubscribe",
            subject=citizen.pseudonym,
            details={},
            now=now,
        )
    return removed


def toggle_service(
    settings: DigestSettings, service_id: int, available: Sequence[int]
) -> DigestSettings | None:
    """The settings with one service switched; None if none would be left."""
    current = set(settings.service_ids) or set(available)
    changed = current ^ {service_id}
    if not changed & set(available):
        return None
    stored = () if changed >= set(available) else tuple(sorted(changed))
    return replace(settings, service_ids=stored)


# --- exports ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One CSV file of an export."""

    filename: str
    content: bytes
    rows: int


def parse_date_range(words: Sequence[str], *, today: date) -> tuple[date, date]:
    """``[FROM [TO]]`` as ISO dates, both included; the last 30 days by default.

    Raises ``ValueError`` for a bad date, a reversed or too long range.
    """
    if len(words) > 2:
        raise ValueError("too many dates")
    first = date.fromisoformat(words[0]) if words else today - timedelta(DEFAULT_EXPORT_DAYS - 1)
    last = date.fromisoformat(words[1]) if len(words) == 2 else today
    if last < first:
        raise ValueError("the range ends before it starts")
    if (last - first).days >= MAX_EXPORT_DAYS:
        raise ValueError("the range is longer than a year")
    return first, last


def range_period(first: date, last: date, zone: ZoneInfo) -> Period:
    """Local days ``first`` to ``last`` (both included) as a UTC period."""
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


async def export_files(
    uow: UnitOfWork,
    *,
    service_ids: Sequence[int] | None,
    first: date,
    last: date,
    zone: ZoneInfo,
) -> list[ExportFile]:
    """The reports and ratings CSV files of the range, in memory (pseudonymous)."""
    start, end = range_period(first, last, zone)
    files = []
    for name, rows_of in (("reports", iter_reports_csv), ("ratings", iter_ratings_csv)):
        text, rows = await csv_text(rows_of, uow, service_ids=service_ids, start=start, end=end)
        files.append(
            ExportFile(
                filename=f"{name}-{first.isoformat()}-{last.isoformat()}.csv",
                content=text.encode("utf-8-sig"),
                rows=rows,
            )
        )
    return files


async def record_export(
    uow: UnitOfWork,
    actor: str,
    *,
    service_ids: Sequence[int] | None,
    first: date,
    last: date,
    rows: dict[str, int],
    now: datetime,
) -> None:
    """Note an export in the audit log: who, which services and dates, how many rows."""
    await uow.repos.staff.audit(
        actor=actor,
        action="digest.export",
        subject=None,
        details={
            "services": None if service_ids is None else list(service_ids),
            "from": first.isoformat(),
            "to": last.isoformat(),
            **rows,
        },
        now=now,
    )
