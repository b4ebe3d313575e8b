"""Coordinators: shifts with their sign-ups, waiting lists and attendance.

Every staff member may look (/shifts and its buttons); moving or cancelling a shift
is for administrators, and tells every signed-up volunteer at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.keyboards import yes_no
from bot.notices import local_time
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.usecases.staff import actor_of
from bot.usecases.volunteering import cancel_opportunity, move_opportunity
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import StaffRoles
from storage.repositories.volunteering import OpportunityRecord

PREFIX = "opp:"
OPPORTUNITY_COMMANDS = ("shifts", "moveshift")
LOOK_BACK = timedelta(days=7)
LOOK_AHEAD = timedelta(days=60)


def _title(opportunity: OpportunityRecord, lang: str) -> str:
    titles = opportunity.titles
    return titles.get(lang) or next(iter(titles.values()), opportunity.code)


def _zone(services: Services) -> ZoneInfo:
    return ZoneInfo(services.settings.timezone)


def _summary(services: Services, opportunity: OpportunityRecord, lang: str) -> str:
    key = "coord.line_cancelled" if opportunity.status != "scheduled" else "coord.line"
    return services.translator.text(
        lang,
        key,
        title=_title(opportunity, lang),
        code=opportunity.code,
        when=local_time(opportunity.starts_at, lang, _zone(services)),
        place=opportunity.place,
        confirmed=opportunity.confirmed,
        slots=opportunity.slots,
        waiting=opportunity.waitlisted,
    )


def _parse_moment(day: str, clock: str, zone: ZoneInfo) -> datetime | None:
    try:
        return datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        return None


def build_opportunities_router() -> Router:
    """Shift commands and buttons; staff only, moving and cancelling for administrators."""
    router = LeanRouter(name="opportunities")
    router.message.filter(
        F.chat.type == "private", Command(*OPPORTUNITY_COMMANDS), RequireRole("staff")
    )
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith(PREFIX), RequireRole("staff")
    )

    @router.message(Command("shifts"))
    async def shifts(
        message: Message, services: Services, uow: UnitOfWork, out: Outgoing, lang: str
    ) -> None:
        t = services.translator
        now = services.clock.now()
        found = await uow.repos.volunteering.between(now - LOOK_BACK, now + LOOK_AHEAD)
        if not found:
            out.add(message.answer(t.text(lang, "coord.none")))
            return
        lines = [t.text(lang, "coord.title")]
        lines += [_summary(services, opportunity, lang) for opportunity in found]
        rows = [
            [
                InlineKeyboardButton(
                    text=f"{local_time(o.starts_at, lang, _zone(services))} · {_title(o, lang)}"[
                        :60
                    ],
                    callback_data=f"{PREFIX}v:{o.id}",
                )
            ]
            for o in found
        ]
        out.add(
            message.answer(
                "\n".join(lines), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows)
            )
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}v:"))
    async def details(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        out.add(query.answer())
        raw = (query.data or "").removeprefix(f"{PREFIX}v:")
        opportunity = (
            await uow.repos.volunteering.opportunity_by_id(int(raw)) if raw.isdigit() else None
        )
        if opportunity is None or query.message is None:
            return
        signups = await uow.repos.volunteering.signups_for_opportunity(opportunity.id)
        lines = [_summary(services, opportunity, lang)]
        confirmed = [s for s in signups if s.status == "confirmed"]
        waiting = [s for s in signups if s.status != "confirmed"]
        lines.append(t.text(lang, "coord.confirmed_heading", count=len(confirmed)))
        for signup in confirmed:
            attended = {True: "coord.attended", False: "coord.absent", None: "coord.unknown"}
            lines.append(
                t.text(
                    lang,
                    attended[signup.attended],
                    who=signup.pseudonym or t.text(lang, "coord.erased"),
                    hours=signup.hours if signup.hours is not None else "–",
                )
            )
        if waiting:
            lines.append(t.text(lang, "coord.waiting_heading", count=len(waiting)))
            lines += [
                t.text(
                    lang,
                    "coord.waiting_line",
                    position=s.position,
                    who=s.pseudonym or t.text(lang, "coord.erased"),
                )
                for s in waiting
            ]
        hours = sum(s.hours or 0 for s in confirmed if s.attended)
        if any(s.attended is not None for s in confirmed):
            lines.append(t.text(lang, "coord.hours_total", hours=f"{hours:g}"))
        markup = None
        if (
            roles.admin
            and opportunity.status == "scheduled"
            and opportunity.starts_at > services.clock.now()
        ):
            markup = InlineKeyboardMarkup(
                inline_keyboard=[
                    [
                        InlineKeyboardButton(
                            text=t.text(lang, "coord.cancel_button"),
                            callback_data=f"{PREFIX}c:{opportunity.id}",
                        )
                    ]
                ]
            )
        out.add(
            SendMessage(chat_id=query.message.chat.id, text="\n".join(lines), reply_markup=markup)
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}c:"))
    async def ask_cancel(
        query: CallbackQuery, services: Services, out: Outgoing, roles: StaffRoles, lang: str
    ) -> None:
        t = services.translator
        if not roles.admin:
            out.add(query.answer(t.text(lang, "staff.admin_only"), show_alert=True))
            return
        out.add(query.answer())
        raw = (query.data or "").removeprefix(f"{PREFIX}c:")
        if not raw.isdigit() or query.message is None:
            return
        out.add(
            SendMessage(
                chat_id=query.message.chat.id,
                text=t.text(lang, "coord.cancel_confirm"),
                reply_markup=yes_no(
                    t.text(lang, "coord.cancel_yes"),
                    f"{PREFIX}cy:{raw}",
                    t.text(lang, "coord.cancel_no"),
                    f"{PREFIX}cn:{raw}",
                ),
            )
        )

    @router.callback_query(F.data.startswith((f"{PREFIX}cy:", f"{PREFIX}cn:")))
    async def cancel(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        if not roles.admin:
            out.add(query.answer(t.text(lang, "staff.admin_only"), show_alert=True))
            return
        data = query.data or ""
        raw = data.split(":")[-1]
        out.add(query.answer())
        if query.message is None or not raw.isdigit():
            return
        chat_id, message_id = query.message.chat.id, query.message.message_id

        def answer(text: str) -> EditMessageText:
            return EditMessageText(chat_id=chat_id, message_id=message_id, text=text)

        if data.startswith(f"{PREFIX}cn:"):
            out.add(answer(t.text(lang, "coord.cancel_kept")))
            return
        now = services.clock.now()
        change = await cancel_opportunity(
            uow, int(raw), now, translator=t, timezone=_zone(services)
        )
        if change is None:
            out.add(answer(t.text(lang, "coord.already_cancelled")))
            return
        await uow.repos.staff.audit(
            actor=actor_of(citizen),
            action="opportunity.cancel",
            subject=f"opportunity:{raw}",
            details={"notified": change.notified},
            now=now,
        )
        services.signals.outbox_pending.set()
        out.add(answer(t.text(lang, "coord.cancelled", count=change.notified)))

    @router.message(Command("moveshift"))
    async def move(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        if not roles.admin:
            out.add(message.answer(t.text(lang, "staff.admin_only")))
            return
        words = (command.args or "").split()
        zone = _zone(services)
        opportunity = await uow.repos.volunteering.opportunity_by_code(words[0]) if words else None
        starts = _parse_moment(words[1], words[2], zone) if len(words) in (3, 4) else None
        if opportunity is None or starts is None:
            out.add(message.answer(t.text(lang, "coord.move_usage")))
            return
        if len(words) == 4:
            ends = _parse_moment(words[1], words[3], zone)
        else:
            ends = starts + (opportunity.ends_at - opportunity.starts_at)
        if ends is None or ends <= starts:
            out.add(message.answer(t.text(lang, "coord.move_usage")))
            return
        now = services.clock.now()
        change = await move_opportunity(
            uow, opportunity.id, starts, ends, now, translator=t, timezone=zone
        )
        if change is None:
            out.add(message.answer(t.text(lang, "coord.move_usage")))
            return
        await uow.repos.staff.audit(
            actor=actor_of(citizen),
            action="opportunity.move",
            subject=f"opportunity:{opportunity.code}",
            details={"starts_at": starts.isoformat(), "notified": change.notified},
            now=now,
        )
        services.signals.outbox_pending.set()
        out.add(
            message.answer(
                t.text(
                    lang,
                    "coord.moved",
                    when=local_time(starts, lang, zone),
                    count=change.notified,
                )
            )
        )

    return router
