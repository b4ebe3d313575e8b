"""A citizen's own things: /status, /myshifts, /mydata, /forget."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from babel.dates import format_date

from bot.keyboards import yes_no
from bot.notices import local_time, queue_promotion_notices
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.statetable import StateTable, current_table
from bot.usecases.account import (
    erase_citizen,
    export_citizen_data,
    give_up_shift,
    my_shifts,
    report_view,
)
from storage.db import UnitOfWork
from storage.records import CitizenRecord, ReportRecord

FORGET_PREFIX = "forget:"
SHIFT_PREFIX = "shift:x:"


def _zone(services: Services) -> ZoneInfo:
    return ZoneInfo(services.settings.timezone)


def _report_line(services: Services, table: StateTable, report: ReportRecord, lang: str) -> str:
    t = services.translator
    category = report.category_names.get(lang) or report.category_code
    return t.text(
        lang,
        "status.line",
        reference=report.reference,
        category=category,
        status=table.label(t, lang, report.status),
        date=format_date(report.created_at.astimezone(_zone(services)), "d MMM", locale=lang),
    )


def build_account_router() -> Router:
    """Commands about the citizen's own reports, shifts and data (private chats)."""
    router = LeanRouter(name="account")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")

    @router.message(Command("status"))
    async def status(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        table = await current_table(uow)  # labels as the administrators wrote them
        if command.args:
            view = await report_view(uow, citizen, command.args.split()[0])
            if view is None:
                out.add(message.answer(t.text(lang, "status.unknown", reference=command.args[:20])))
                return
            lines = [_report_line(services, table, view.report, lang)]
            if view.involved:
                lines.append(t.text(lang, "status.description", text=view.report.description[:600]))
            for event in view.history:
                when = local_time(event.at, lang, _zone(services))
                what = (
                    table.label(t, lang, event.to_status)
                    if event.to_status
                    else t.text(lang, f"event.{event.kind}")
                    if t.has(f"event.{event.kind}")
                    else event.kind
                )
                note = f" — {event.note}" if event.note and view.involved else ""
                lines.append(t.text(lang, "status.event", when=when, what=what, note=note))
            out.add(message.answer("\n".join(lines)))
            return
        reports = await uow.repos.reports.for_citizen(citizen.id)
        if not reports:
            out.add(message.answer(t.text(lang, "status.none")))
            return
        lines = [t.text(lang, "status.title")]
        lines += [_report_line(services, table, report, lang) for report in reports]
        lines.append(t.text(lang, "status.hint"))
        out.add(message.answer("\n".join(lines)))

    @router.message(Command("myshifts"))
    async def shifts(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        found = await my_shifts(uow, citizen, now=services.clock.now())
        active = [s for s in found if s.opportunity_status == "scheduled"]
        if not active:
            out.add(message.answer(t.text(lang, "shifts.none")))
            return
        lines = [t.text(lang, "shifts.title")]
        buttons = []
        for number, signup in enumerate(active, start=1):
            title = signup.titles.get(lang) or next(iter(signup.titles.values()), "")
            key = "shifts.confirmed" if signup.status == "confirmed" else "shifts.waitlisted"
            lines.append(
                t.text(
                    lang,
                    key,
                    number=number,
                    title=title,
                    when=local_time(signup.starts_at, lang, _zone(services)),
                    place=signup.place,
                    position=signup.position,
                )
            )
            buttons.append(
                [
                    InlineKeyboardButton(
                        text=t.text(lang, "shifts.cancel_button", number=number),
                        callback_data=f"{SHIFT_PREFIX}{signup.signup_id}",
                    )
                ]
            )
        markup = InlineKeyboardMarkup(inline_keyboard=buttons)
        out.add(message.answer("\n\n".join(lines), reply_markup=markup))

    @router.callback_query(F.data.startswith(SHIFT_PREFIX))
    async def cancel_shift(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        raw = (query.data or "").removeprefix(SHIFT_PREFIX)
        cancelled, promoted = (False, None)
        if raw.isdigit():
            cancelled, promoted = await give_up_shift(
                uow, citizen, int(raw), now=services.clock.now()
            )
        if not cancelled:
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        out.add(query.answer(t.text(lang, "shifts.cancelled")))
        out.add(SendMessage(chat_id=query.from_user.id, text=t.text(lang, "shifts.cancelled")))
        if promoted is not None:
            now = services.clock.now()
            await queue_promotion_notices(uow, t, _zone(services), [promoted], now=now)
            services.signals.outbox_pending.set()

    @router.message(Command("mydata"))
    async def mydata(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        document = await export_citizen_data(uow, citizen)
        payload = json.dumps(document, ensure_ascii=False, indent=2).encode()
        out.add(
            message.answer_document(
                BufferedInputFile(payload, filename="my-data.json"),
                caption=services.translator.text(lang, "mydata.caption"),
            )
        )

    @router.message(Command("forget"))
    async def forget(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        buttons = yes_no(
            t.text(lang, "forget.yes"),
            f"{FORGET_PREFIX}yes",
            t.text(lang, "forget.no"),
            f"{FORGET_PREFIX}no",
        )
        out.add(message.answer(t.text(lang, "forget.confirm"), reply_markup=buttons))

    @router.callback_query(F.data.startswith(FORGET_PREFIX))
    async def forget_answer(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        out.add(query.answer())
        chat_id = query.from_user.id
        if query.data != f"{FORGET_PREFIX}yes":
            out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "forget.kept")))
            return
        promoted = await erase_citizen(uow, citizen, now=services.clock.now())
        out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "forget.done")))
        await queue_promotion_notices(uow, t, _zone(services), promoted, now=services.clock.now())
        services.signals.outbox_pending.set()

    return router
