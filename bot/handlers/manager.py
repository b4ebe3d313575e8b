"""Service managers: report cards, status buttons, /reports and /report. Staff only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, CommandObject
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import CallbackQuery, Message

from bot.managers.cards import CODE_STATUSES, STATUS_PREFIX, card_methods, card_text, status_buttons
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.statetable import TransitionNotAllowedError, current_table
from bot.usecases.reports import change_report_status, status_text
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord, ReportRecord
from storage.repositories.reports import OPEN_STATUSES
from storage.repositories.staff import StaffRoles

MANAGER_COMMANDS = ("reports", "report")
PAGE = 10
AREA_PREFIX = "area:"


def _may_handle(roles: StaffRoles, report: ReportRecord) -> bool:
    return roles.admin or report.service_id in roles.service_ids


def build_manager_router() -> Router:
    """Managers act on their services' reports; administrators on all."""
    router = Router(name="manager")
    router.message.filter(
        F.chat.type == "private", Command(*MANAGER_COMMANDS), RequireRole("staff")
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
        parts = (query.data or "").removeprefix(STATUS_PREFIX).split(":")
        status = CODE_STATUSES.get(parts[1]) if len(parts) == 2 else None
        report = (
            await uow.repos.reports.by_id(int(parts[0])) if parts and parts[0].isdigit() else None
        )
        if report is None or status is None:
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        if not _may_handle(roles, report):
            out.add(query.answer(t.text(lang, "manager.not_yours"), show_alert=True))
            return
        zone = ZoneInfo(services.settings.timezone)
        now = services.clock.now()
        table = await current_table(uow)
        try:
            change = await change_report_status(
                uow,
                report.id,
                status,
                actor_of(citizen),
                None,
                now,
                translator=t,
                timezone=zone,
            )
        except TransitionNotAllowedError as refused:
            text = t.text(
                lang,
                "manager.transition_refused",
                reference=report.reference,
                current=status_text(t, lang, refused.from_status, table),
                status=status_text(t, lang, refused.to_status, table),
            )
            out.add(query.answer(text, show_alert=True))
            return
        await uow.repos.staff.audit(
            actor=actor_of(citizen),
            action="report.status",
            subject=report.reference,
            details={"from": report.status, "to": status},
            now=now,
        )
        services.signals.outbox_pending.set()
        services.signals.followups_due.set()
        updated = await uow.repos.reports.by_id(report.id)
        assert updated is not None
        done = t.text(
            lang,
            "manager.status_changed",
            reference=report.reference,
            status=status_text(t, lang, status, table),
            notified=change.notified if change else 0,
        )
        out.add(query.answer(done))
        if query.message is not None:
            text = await card_text(
                uow, updated, translator=t, language=lang, timezone=zone, now=now
            )
            out.add(
                EditMessageText(
                    chat_id=query.from_user.id,
                    message_id=query.message.message_id,
                    text=text,
                    reply_markup=status_buttons(updated, t, lang, table),
                )
            )
        out.add(SendMessage(chat_id=query.from_user.id, text=done))

    return router
