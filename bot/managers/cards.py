"""Report cards for managers: what was reported, where, by whom (a pseudonym), and buttons.

The reporter appears as their stable pseudonym unless they agreed to share their
name; citizen text is escaped wherever it is rendered.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape
from typing import Any

from aiogram.methods import SendLocation, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from babel.dates import format_datetime

from bot.followups.texts import label
from bot.i18n import Translator
from bot.outbox import enqueue
from bot.statetable import REPORT_STATUSES, StateTable, current_table
from storage.db import UnitOfWork
from storage.records import ReportRecord

STATUS_PREFIX = "mgr:st:"
# Short codes keep callback data far below Telegram's 64 bytes.
STATUS_CODES = {status: str(index) for index, status in enumerate(REPORT_STATUSES)}
CODE_STATUSES = {code: status for status, code in STATUS_CODES.items()}


def status_buttons(
    report: ReportRecord, translator: Translator, language: str, table: StateTable
) -> InlineKeyboardMarkup:
    """One button per status the state table offers from the report's, two per row."""
    buttons = [
        InlineKeyboardButton(
            text=table.label(translator, language, status),
            callback_data=f"{STATUS_PREFIX}{report.id}:{STATUS_CODES[status]}",
        )
        for status in table.offered_from(report.status)
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


async def reporter_label(uow: UnitOfWork, report: ReportRecord) -> str:
    """The reporter as managers may see them: a pseudonym unless they agreed otherwise."""
    if report.citizen_id is None:
        return "—"
    citizen = await uow.repos.citizens.by_id(report.citizen_id)
    if citizen is None:
        return "—"
    if report.anonymous or not citizen.first_name:
        return citizen.pseudonym
    handle = f" @{citizen.username}" if citizen.username else ""
    return f"{citizen.first_name}{handle} ({citizen.pseudonym})"


def card_key(report_id: int) -> str:
    """The start of the outbox keys of a report's cards (one key per manager)."""
    return f"card:{report_id}:"


async def redact_reporter(uow: UnitOfWork, report: ReportRecord, pseudonym: str) -> int:
    """Erasure: the report's cards in the outbox, and the failed updates that quote a
    card (a manager's button press), show the reporter's pseudonym instead of the name
    they let managers see; returns how many rows changed."""
    shown = await reporter_label(uow, report)
    if shown == pseudonym:
        return 0
    # As the card's text escaped it; Telegram quotes it back as plain text.
    cards = await uow.repos.outbox.redact(
        card_key(report.id), escape(shown, quote=False), escape(pseudonym, quote=False)
    )
    return cards + await uow.repos.inbox.redact_failed(shown, pseudonym)


async def card_text(
    uow: UnitOfWork,
    report: ReportRecord,
    *,
    translator: Translator,
    language: str,
    timezone: tzinfo,
    now: datetime,
) -> str:
    """The card's HTML text (escaped)."""
    table = await current_table(uow)
    photos = await uow.repos.reports.photo_count(report.id)
    place = escape(report.address or "") or (
        f"{report.latitude:.5f}, {report.longitude:.5f}"
        if report.latitude is not None and report.longitude is not None
        else translator.text(language, "card.no_place")
    )
    age_days = max(0, (now - report.created_at).days)
    overdue = report.status != "fixed" and report.due_at < now
    return translator.text(
        language,
        "card.text",
        reference=report.reference,
        category=label(report.category_names, language),
        status=table.label(translator, language, report.status),
        description=report.description[:2500],
        place=place,
        photos=photos,
        supporters=report.supporters,
        reporter=await reporter_label(uow, report),
        created=format_datetime(
            report.created_at.astimezone(timezone), "d MMM HH:mm", locale=language
        ),
        age=age_days,
        due=format_datetime(report.due_at.astimezone(timezone), "d MMM", locale=language),
        overdue=translator.text(language, "card.overdue") if overdue else "",
    )


async def card_methods(
    uow: UnitOfWork,
    report: ReportRecord,
    chat_id: int,
    *,
    translator: Translator,
    language: str,
    timezone: tzinfo,
    now: datetime,
    photo_file_ids: list[str] | None = None,
) -> list[TelegramMethod[Any]]:
    """The card, then a map pin and the photos (by Telegram file id, already stripped)."""
    text = await card_text(
        uow, report, translator=translator, language=language, timezone=timezone, now=now
    )
    buttons = status_buttons(report, translator, language, await current_table(uow))
    methods: list[TelegramMethod[Any]] = [
        SendMessage(chat_id=chat_id, text=text, reply_markup=buttons)
    ]
    if report.latitude is not None and report.longitude is not None:
        methods.append(
            SendLocation(chat_id=chat_id, latitude=report.latitude, longitude=report.longitude)
        )
    for file_id in photo_file_ids or []:
        methods.append(SendPhoto(chat_id=chat_id, photo=file_id, caption=report.reference))
    return methods


async def send_new_report_cards(
    uow: UnitOfWork,
    report: ReportRecord,
    *,
    translator: Translator,
    timezone: tzinfo,
    now: datetime,
    photo_file_ids: list[str],
) -> int:
    """Queue the new report's card for every manager of its service; returns how many."""
    sent = 0
    for manager in await uow.repos.staff.managers_of(report.service_id):
        methods = await card_methods(
            uow,
            report,
            manager.telegram_id,
            translator=translator,
            language=manager.language,
            timezone=timezone,
            now=now,
            photo_file_ids=photo_file_ids,
        )
        methods.insert(
            0,
            SendMessage(
                chat_id=manager.telegram_id, text=translator.text(manager.language, "card.new")
            ),
        )
        ids = await enqueue(
            uow,
            methods,
            chat_id=manager.telegram_id,
            citizen_id=manager.citizen_id,
            kind="report_card",
            now=now,
            idempotency_key=f"{card_key(report.id)}{manager.citizen_id}",
        )
        sent += bool(ids)
    return sent
