"""Service managers: report cards, status buttons, /reports and /report. Staff only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject, or_f
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.managers.cards import (
    CODE_STATUSES,
    STATUS_CODES,
    STATUS_PREFIX,
    card_methods,
    card_text,
    status_buttons,
)
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.statetable import TransitionNotAllowedError, current_table
from bot.usecases.reports import change_report_status, status_text
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord, ReportRecord
from storage.repositories.reports import OPEN_STATUSES
from storage.repositories.staff import StaffRoles

MANAGER_COMMANDS = ("reports", "report")
# "Without a note" on a note prompt; a reply to that prompt is the note.
NOTE_PREFIX = "mgr:nn:"
NOTE_LENGTH = 1000
PAGE = 10
AREA_PREFIX = "area:"


def _may_handle(roles: StaffRoles, report: ReportRecord) -> bool:
    return roles.admin or report.service_id in roles.service_ids


def build_manager_router() -> Router:
    """Managers act on their services' reports; administrators on all."""
    router = LeanRouter(name="manager")
    # Commands, and replies to a note prompt (a bot message with buttons): only those
    # pay for the role lookup.
    router.message.filter(
        F.chat.type == "private",
        or_f(Command(*MANAGER_COMMANDS), F.reply_to_message.reply_markup),
        RequireRole("staff"),
    )
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith("mgr:"), RequireRole("staff")
    )

    @router.message(Command("report"))
    async def open_card(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        reference = (command.args or "").strip().split(" ")[0]
        if not reference:
            # A bare /report is the citizens' flow, for staff too.
            raise SkipHandler
        report = await uow.repos.reports.by_reference(reference)
        if report is None or not _may_handle(roles, report):
            out.add(message.answer(t.text(lang, "status.unknown", reference=reference[:20])))
            return
        for method in await card_methods(
            uow,
            report,
            message.chat.id,
            translator=t,
            language=lang,
            timezone=ZoneInfo(services.settings.timezone),
            now=services.clock.now(),
            photo_file_ids=await uow.repos.reports.photo_file_ids(report.id),
        ):
            out.add(method)

    @router.message(Command("reports"))
    async def list_reports(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        words = (command.args or "").lower().split()
        statuses: tuple[str, ...] | None = OPEN_STATUSES
        overdue = None
        category = None
        area_id = None
        page = 0
        for word in words:
            if word == "all":
                statuses = None
            elif word == "overdue":
                overdue = services.clock.now()
            elif word.isdigit():
                page = max(0, int(word) - 1)
            elif word in CODE_STATUSES.values():
                statuses = (word,)
            elif word.startswith(AREA_PREFIX):
                # An unknown area matches no report rather than every one.
                area_id = await uow.repos.areas.id_by_code(word.removeprefix(AREA_PREFIX)) or -1
            elif (found := await uow.repos.areas.id_by_code(word)) is not None:
                area_id = found
            else:
                category = word
        reports = await uow.repos.reports.for_services(
            None if roles.admin else sorted(roles.service_ids),
            statuses=statuses,
            category_code=category,
            overdue_at=overdue,
            area_id=area_id,
            limit=PAGE,
            offset=page * PAGE,
        )
        if not reports:
            out.add(message.answer(t.text(lang, "reports.none")))
            return
        table = await current_table(uow)
        lines = [t.text(lang, "reports.title", page=page + 1)]
        for report in reports:
            lines.append(
                t.text(
                    lang,
                    "reports.line",
                    reference=report.reference,
                    category=report.category_names.get(lang) or report.category_code,
                    status=status_text(t, lang, report.status, table),
                    supporters=report.supporters,
                )
            )
        lines.append(t.text(lang, "reports.hint"))
        out.add(message.answer("\n".join(lines)))

    async def apply_status(
        report: ReportRecord,
        status: str,
        note: str | None,
        *,
        services: Services,
        uow: UnitOfWork,
        citizen: CitizenRecord,
        lang: str,
    ) -> tuple[str, ReportRecord | None]:
        """Change the status; the text for the manager and the report after (None: refused)."""
        t = services.translator
        zone = ZoneInfo(services.settings.timezone)
        now = services.clock.now()
        table = await current_table(uow)
        try:
            change = await change_report_status(
                uow, report.id, status, actor_of(citizen), note, now, translator=t, timezone=zone
            )
        except TransitionNotAllowedError as refused:
            text = t.text(
                lang,
                "manager.transition_refused",
                reference=report.reference,
                current=status_text(t, lang, refused.from_status, table),
                status=status_text(t, lang, refused.to_status, table),
            )
            return text, None
        await uow.repos.staff.audit(
            actor=actor_of(citizen),
            action="report.status",
            subject=report.reference,
            details={"from": report.status, "to": status, "note": bool(note)},
            now=now,
        )
        services.signals.outbox_pending.set()
        services.signals.followups_due.set()
        updated = await uow.repos.reports.by_id(report.id)
        done = t.text(
            lang,
            "manager.status_changed",
            reference=report.reference,
            status=status_text(t, lang, status, table),
            notified=change.notified if change else 0,
        )
        return done, updated

    async def card_view(
        report: ReportRecord, *, services: Services, uow: UnitOfWork, lang: str
    ) -> tuple[str, InlineKeyboardMarkup]:
        """A report's card text and the buttons of its status, for the manager."""
        t = services.translator
        text = await card_text(
            uow,
            report,
            translator=t,
            language=lang,
            timezone=ZoneInfo(services.settings.timezone),
            now=services.clock.now(),
        )
        return text, status_buttons(report, t, lang, await current_table(uow))

    async def target(
        data: str, prefix: str, uow: UnitOfWork
    ) -> tuple[ReportRecord | None, str | None]:
        parts = data.removeprefix(prefix).split(":")
        status = CODE_STATUSES.get(parts[1]) if len(parts) == 2 else None
        report = (
            await uow.repos.reports.by_id(int(parts[0])) if parts and parts[0].isdigit() else None
        )
        return report, status

    @router.callback_query(F.data.startswith(STATUS_PREFIX))
    async def change_status(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        report, status = await target(query.data or "", STATUS_PREFIX, uow)
        if report is None or status is None:
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        if not _may_handle(roles, report):
            out.add(query.answer(t.text(lang, "manager.not_yours"), show_alert=True))
            return
        table = await current_table(uow)
        if table.asks_note(status) and table.allows(report.status, status):
            # The table wants a note: ask for it; the change waits for the reply.
            out.add(query.answer())
            out.add(
                SendMessage(
                    chat_id=query.from_user.id,
                    text=t.text(
                        lang,
                        "manager.note_prompt",
                        reference=report.reference,
                        status=status_text(t, lang, status, table),
                    ),
                    reply_markup=InlineKeyboardMarkup(
                        inline_keyboard=[
                            [
                                InlineKeyboardButton(
                                    text=t.text(lang, "manager.note_skip"),
                                    callback_data=f"{NOTE_PREFIX}{report.id}:{STATUS_CODES[status]}",
                                )
                            ]
                        ]
                    ),
                )
            )
            return
        done, updated = await apply_status(
            report, status, None, services=services, uow=uow, citizen=citizen, lang=lang
        )
        if updated is None:
            out.add(query.answer(done, show_alert=True))
            return
        out.add(query.answer(done))
        if query.message is not None:
            text, buttons = await card_view(updated, services=services, uow=uow, lang=lang)
            out.add(
                EditMessageText(
                    chat_id=query.from_user.id,
                    message_id=query.message.message_id,
                    text=text,
                    reply_markup=buttons,
                )
            )
        out.add(SendMessage(chat_id=query.from_user.id, text=done))

    async def with_note(
        report: ReportRecord | None,
        status: str | None,
        note: str | None,
        *,
        chat_id: int,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        if report is None or status is None or report.status == status:
            out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "error.stale_button")))
            return
        if not _may_handle(roles, report):
            out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "manager.not_yours")))
            return
        done, updated = await apply_status(
            report, status, note, services=services, uow=uow, citizen=citizen, lang=lang
        )
        out.add(SendMessage(chat_id=chat_id, text=done))
        if updated is not None:  # the card again, with the buttons of its new status
            text, buttons = await card_view(updated, services=services, uow=uow, lang=lang)
            out.add(SendMessage(chat_id=chat_id, text=text, reply_markup=buttons))

    @router.callback_query(F.data.startswith(NOTE_PREFIX))
    async def without_note(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        out.add(query.answer())
        report, status = await target(query.data or "", NOTE_PREFIX, uow)
        await with_note(
            report,
            status,
            None,
            chat_id=query.from_user.id,
            services=services,
            uow=uow,
            out=out,
            citizen=citizen,
            roles=roles,
            lang=lang,
        )

    @router.message(F.reply_to_message.reply_markup)
    async def note_reply(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        prompt = message.reply_to_message
        markup = prompt.reply_markup if prompt else None
        data = next(
            (
                button.callback_data
                for row in (markup.inline_keyboard if markup else [])
                for button in row
                if (button.callback_data or "").startswith(NOTE_PREFIX)
            ),
            None,
        )
        if data is None:
            raise SkipHandler  # a reply to something else: not ours
        if not message.text:
            out.add(message.answer(services.translator.text(lang, "manager.note_text_only")))
            return
        report, status = await target(data, NOTE_PREFIX, uow)
        await with_note(
            report,
            status,
            message.text[:NOTE_LENGTH],
            chat_id=message.chat.id,
            services=services,
            uow=uow,
            out=out,
            citizen=citizen,
            roles=roles,
            lang=lang,
        )

    return router
