"""Digests for staff: /digest now, /subscribe with buttons, /export CSV files.

The whole router requires a staff role, for commands and ``dig:`` buttons alike.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.methods import EditMessageText, TelegramMethod
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from babel.dates import format_datetime, get_day_names

from bot.digests.schedule import DAILY, FREQUENCIES, WEEKLY, is_zone
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.usecases.digests import (
    DigestSettings,
    chosen_services,
    compose_digest,
    default_settings,
    digest_methods,
    export_files,
    on_demand_period,
    parse_date_range,
    queue_digest,
    record_export,
    save_subscription,
    settings_of,
    toggle_service,
    unsubscribe,
    visible_services,
)
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.digest_subscriptions import DigestSubscriptionRecord
from storage.repositories.digests import ServiceInfo
from storage.repositories.staff import StaffRoles

log = logging.getLogger(__name__)

DIGEST_COMMANDS = ("digest", "subscribe", "export")
PREFIX = "dig:"
HOURS_PER_ROW = 6
OFF_WORDS = ("off", "stop", "unsubscribe")


def _service_name(service: ServiceInfo, lang: str) -> str:
    return service.names.get(lang) or service.code


def _day_name(weekday: int, lang: str) -> str:
    return str(get_day_names("wide", locale=lang)[weekday])


def panel_text(
    services: Services,
    subscription: DigestSubscriptionRecord,
    available: list[ServiceInfo],
    lang: str,
) -> str:
    """The subscription in words: how often, when, where, which services, next one."""
    t = services.translator
    if subscription.frequency == DAILY or subscription.weekday is None:
        when = t.text(lang, "subscribe.every_day")
    else:
        when = t.text(lang, "subscribe.every_weekday", day=_day_name(subscription.weekday, lang))
    chosen = set(subscription.service_ids)
    names = [_service_name(s, lang) for s in available if not chosen or s.id in chosen]
    zone = ZoneInfo(subscription.timezone)
    return t.text(
        lang,
        "subscribe.panel",
        when=when,
        hour=f"{subscription.hour:02d}:00",
        zone=subscription.timezone,
        services=", ".join(names) if chosen else t.text(lang, "subscribe.all_services"),
        next=format_datetime(subscription.next_due_at, "EEE d MMM HH:mm", tzinfo=zone, locale=lang),
    )


def panel_buttons(
    services: Services,
    subscription: DigestSubscriptionRecord,
    available: list[ServiceInfo],
    zones: list[str],
    lang: str,
) -> InlineKeyboardMarkup:
    """Buttons that change one setting each; the current choice carries a tick."""
    t = services.translator

    def button(label: str, data: str, chosen: bool = False) -> InlineKeyboardButton:
        return InlineKeyboardButton(text=f"✅ {label}" if chosen else label, callback_data=data)

    rows = [
        [
            button(
                t.text(lang, f"subscribe.{frequency}"),
                f"{PREFIX}f:{frequency}",
                subscription.frequency == frequency,
            )
            for frequency in FREQUENCIES
        ]
    ]
    if subscription.frequency == WEEKLY:
        short = get_day_names("abbreviated", locale=lang)
        rows.append(
            [
                button(str(short[day]), f"{PREFIX}w:{day}", subscription.weekday == day)
                for day in range(7)
            ]
        )
    hours = [
        button(f"{hour:02d}", f"{PREFIX}h:{hour}", subscription.hour == hour) for hour in range(24)
    ]
    rows += [hours[i : i + HOURS_PER_ROW] for i in range(0, len(hours), HOURS_PER_ROW)]
    rows.append(
        [button(zone, f"{PREFIX}z:{zone}", subscription.timezone == zone) for zone in zones]
    )
    chosen = set(subscription.service_ids)
    rows += [
        [
            button(
                _service_name(service, lang),
                f"{PREFIX}s:{service.id}",
                not chosen or service.id in chosen,
            )
        ]
        for service in available
    ]
    rows.append([button(t.text(lang, "subscribe.stop_button"), f"{PREFIX}off")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _zones(services: Services, citizen: CitizenRecord, current: str) -> list[str]:
    """A few zones to offer as buttons: the current one, the person's, ours, UTC."""
    candidates = [current, citizen.timezone, services.settings.timezone, "UTC"]
    return list(dict.fromkeys(zone for zone in candidates if zone))[:4]


async def _panel(
    services: Services,
    uow: UnitOfWork,
    citizen: CitizenRecord,
    roles: StaffRoles,
    subscription: DigestSubscriptionRecord,
    lang: str,
) -> tuple[str, InlineKeyboardMarkup]:
    available = await visible_services(uow, roles)
    zones = _zones(services, citizen, subscription.timezone)
    return (
        panel_text(services, subscription, available, lang),
        panel_buttons(services, subscription, available, zones, lang),
    )


def _changed(
    settings: DigestSettings, kind: str, value: str, available: list[int]
) -> tuple[DigestSettings | None, str]:
    """The settings after one button; None when the button makes no sense now."""
    if kind == "s" and value.isdigit() and int(value) in available:
        return toggle_service(settings, int(value), available), "services"
    cadence = settings.cadence
    try:
        if kind == "f" and value in FREQUENCIES:
            weekday = cadence.weekday if cadence.weekday is not None else 0
            new = replace(cadence, frequency=value, weekday=weekday if value == WEEKLY else None)
            what = "frequency"
        elif kind == "w" and value.isdigit():
            new, what = replace(cadence, frequency=WEEKLY, weekday=int(value)), "weekday"
        elif kind == "h" and value.isdigit():
            new, what = replace(cadence, hour=int(value)), "hour"
        elif kind == "z":
            new, what = replace(cadence, timezone=value), "timezone"
        else:
            return None, kind
    except ValueError:
        # Cadence refuses the new combination (an hour of 24, an unknown zone).
        return None, kind
    return replace(settings, cadence=new), what


def build_digest_router() -> Router:
    """Digest commands and buttons for managers and administrators (private chats)."""
    router = LeanRouter(name="digests")
    router.message.filter(F.chat.type == "private", Command(*DIGEST_COMMANDS), RequireRole("staff"))
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith(PREFIX), RequireRole("staff")
    )

    @router.message(Command("digest"))
    async def digest_now(
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
        subscription = await uow.repos.digest_subscriptions.for_citizen(citizen.id)
        word = (command.args or "").strip().lower()
        frequency = {"day": DAILY, "daily": DAILY, "week": WEEKLY, "weekly": WEEKLY}.get(
            word, subscription.frequency if subscription else WEEKLY
        )
        service_ids = chosen_services(subscription.service_ids if subscription else (), roles)
        if service_ids == []:
            out.add(message.answer(t.text(lang, "digest.no_services")))
            return
        now = services.clock.now()
        chat_id = message.chat.id

        async def compose_and_queue() -> list[TelegramMethod[Any]]:
            # After the commit, by a reader: the update held no lock while it was read.
            async with services.database.reader() as reader:
                content = await compose_digest(
                    reader,
                    t,
                    language=lang,
                    service_ids=service_ids,
                    period=on_demand_period(now, frequency),
                )
            methods = await digest_methods(content, chat_id=chat_id, language=lang, translator=t)
            async with services.database.uow() as writer:
                await queue_digest(writer, methods, chat_id=chat_id, citizen_id=citizen.id, now=now)
            services.signals.outbox_pending.set()
            return []

        out.add(message.answer(t.text(lang, "digest.queued")))
        out.later(compose_and_queue)

    @router.message(Command("subscribe"))
    async def subscribe(
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
        now = services.clock.now()
        words = (command.args or "").split()
        if words and words[0].lower() in OFF_WORDS:
            stopped = await unsubscribe(uow, citizen, now=now)
            out.add(
                message.answer(t.text(lang, "subscribe.stopped" if stopped else "subscribe.none"))
            )
            return
        subscription = await uow.repos.digest_subscriptions.for_citizen(citizen.id)
        settings = (
            settings_of(subscription)
            if subscription
            else default_settings(citizen, services.settings.timezone)
        )
        if words and words[0].lower() in ("tz", "timezone", "zone"):
            zone = words[1] if len(words) == 2 else ""
            if not is_zone(zone):
                out.add(message.answer(t.text(lang, "subscribe.bad_zone", zone=zone[:64])))
                return
            changed, _ = _changed(settings, "z", zone, [])
            assert changed is not None
            subscription = await save_subscription(
                uow, citizen, changed, now=now, change="timezone"
            )
        elif words:
            out.add(message.answer(t.text(lang, "subscribe.usage")))
            return
        elif subscription is None:
            subscription = await save_subscription(
                uow, citizen, settings, now=now, change="created"
            )
        text, buttons = await _panel(services, uow, citizen, roles, subscription, lang)
        out.add(message.answer(text, reply_markup=buttons))

    @router.callback_query(F.data.startswith(PREFIX))
    async def change(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        now = services.clock.now()
        kind, _, value = (query.data or "").removeprefix(PREFIX).partition(":")
        subscription = await uow.repos.digest_subscriptions.for_citizen(citizen.id)
        if subscription is None:
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        if kind == "off":
            await unsubscribe(uow, citizen, now=now)
            out.add(query.answer(t.text(lang, "subscribe.stopped")))
            if query.message is not None:
                out.add(
                    EditMessageText(
                        chat_id=query.from_user.id,
                        message_id=query.message.message_id,
                        text=t.text(lang, "subscribe.stopped"),
                    )
                )
            return
        available = [service.id for service in await visible_services(uow, roles)]
        settings, what = _changed(settings_of(subscription), kind, value, available)
        if settings is None:
            key = "subscribe.need_service" if kind == "s" else "error.stale_button"
            out.add(query.answer(t.text(lang, key)))
            return
        saved = await save_subscription(uow, citizen, settings, now=now, change=what)
        out.add(query.answer(t.text(lang, "subscribe.saved")))
        if query.message is not None:
            text, buttons = await _panel(services, uow, citizen, roles, saved, lang)
            out.add(
                EditMessageText(
                    chat_id=query.from_user.id,
                    message_id=query.message.message_id,
                    text=text,
                    reply_markup=buttons,
                )
            )

    @router.message(Command("export"))
    async def export(
        message: Message,
        command: CommandObject,
        services: Services,
        out: Outgoing,
        citizen: CitizenRecord,
        roles: StaffRoles,
        lang: str,
    ) -> None:
        t = services.translator
        now = services.clock.now()
        zone = ZoneInfo(services.settings.timezone)
        try:
            first, last = parse_date_range(
                (command.args or "").split(), today=now.astimezone(zone).date()
            )
        except ValueError:
            out.add(message.answer(t.text(lang, "export.usage")))
            return
        service_ids = chosen_services((), roles)
        if service_ids == []:
            out.add(message.answer(t.text(lang, "digest.no_services")))
            return

        async def export_and_audit() -> list[TelegramMethod[Any]]:
            # After the commit, by a reader: the update held no lock while it was read.
            async with services.database.reader() as reader:
                files = await export_files(
                    reader, service_ids=service_ids, first=first, last=last, zone=zone
                )
            async with services.database.uow() as writer:
                await record_export(
                    writer,
                    actor_of(citizen),
                    service_ids=service_ids,
                    first=first,
                    last=last,
                    rows={file.filename.split("-")[0]: file.rows for file in files},
                    now=now,
                )
            return [
                message.answer_document(
                    BufferedInputFile(file.content, filename=file.filename),
                    caption=t.text(
                        lang,
                        f"export.{file.filename.split('-')[0]}",
                        rows=file.rows,
                        first=first.isoformat(),
                        last=last.isoformat(),
                    ),
                )
                for file in files
            ]

        out.later(export_and_audit)

    return router
