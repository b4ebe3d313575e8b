"""Administrators: compose a broadcast for a segment, preview it, send it. Admins only.

/broadcast → who (everyone, a language, an area, volunteers with a skill, reporters
of a category, raters of a service) → the administrator replies to the bot's prompt
with the text, or a photo with a caption (formatting kept) → the preview as citizens
will see it, with how many it reaches → Send / Cancel.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.filters import Command, or_f
from aiogram.methods import SendMessage
from aiogram.types import (
    CallbackQuery,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.i18n import Markup
from bot.keyboards import yes_no
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.usecases.broadcasts import (
    Draft,
    cancel_broadcast,
    confirm_broadcast,
    draft_you_said,
    message_of,
    set_broadcast_content,
    start_broadcast,
)
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.broadcasts import EVERYONE, SEGMENT_KINDS, Segment

PREFIX = "bc:"
BROADCAST_COMMANDS = ("broadcast", "yousaid")


def _name(names: Mapping[str, str], lang: str, code: str) -> str:
    return names.get(lang) or next(iter(names.values()), code)


def _button(text: str, data: str) -> list[InlineKeyboardButton]:
    return [InlineKeyboardButton(text=text, callback_data=data)]


async def _choices(
    services: Services, uow: UnitOfWork, kind: str, lang: str
) -> list[tuple[str, str]]:
    """(label, value) pairs for a segment kind; the value goes in the button's data."""
    repos = uow.repos
    if kind == "language":
        return [
            (services.translator.text(code, "language.name"), code)
            for code in services.translator.languages
        ]
    if kind == "area":
        return [(_name(a.names, lang, a.code), a.code) for a in await repos.areas.active()]
    if kind == "category":
        return [(_name(c.names, lang, c.code), c.code) for c in await repos.catalog.categories()]
    if kind == "service":
        return [(_name(s.names, lang, s.code), s.code) for s in await repos.catalog.services()]
    if kind == "skill":
        return [(skill, skill) for skill in await repos.broadcasts.skills()]
    return []


def _describe(services: Services, segment: Segment, lang: str) -> Markup:
    text = services.translator.text(lang, f"broadcast.segment.{segment.kind}", value=segment.value)
    return Markup(text)


def build_broadcast_router() -> Router:
    """Broadcast commands, replies and buttons; every one requires an administrator."""
    router = LeanRouter(name="broadcasts")
    # Cheap filters first: only /broadcast and replies to the bot pay for the role lookup.
    router.message.filter(
        F.chat.type == "private",
        or_f(Command(*BROADCAST_COMMANDS), F.reply_to_message.from_user.is_bot),
        RequireRole("admin"),
    )
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith(PREFIX), RequireRole("admin")
    )

    @router.message(Command("yousaid"))
    async def you_said(
        message: Message, services: Services, uow: UnitOfWork, out: Outgoing, lang: str
    ) -> None:
        t = services.translator
        rows = [
            _button(label, f"{PREFIX}ys:{code}")
            for label, code in await _choices(services, uow, "service", lang)
        ]
        out.add(
            message.answer(
                t.text(lang, "yousaid.choose_service"),
                reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
            )
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}ys:"))
    async def you_said_service(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        out.add(query.answer())
        if query.message is None:
            return
        chat_id = query.message.chat.id
        draft = await draft_you_said(
            uow,
            services,
            citizen,
            chat_id=chat_id,
            service_code=(query.data or "").removeprefix(f"{PREFIX}ys:"),
            lang=lang,
        )
        if draft is None:
            out.add(
                SendMessage(chat_id=chat_id, text=services.translator.text(lang, "yousaid.quiet"))
            )
            return
        _preview(chat_id, draft, services, out, lang)

    @router.message(Command("broadcast"))
    async def broadcast(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        rows = [
            _button(t.text(lang, f"broadcast.kind.{kind}"), f"{PREFIX}k:{kind}")
            for kind in SEGMENT_KINDS
        ]
        out.add(
            message.answer(
                t.text(lang, "broadcast.choose_segment"),
                reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
            )
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}k:"))
    async def kind_chosen(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        kind = (query.data or "").removeprefix(f"{PREFIX}k:")
        out.add(query.answer())
        if kind not in SEGMENT_KINDS or query.message is None:
            return
        if kind == EVERYONE:
            await _start(
                query.message.chat.id, Segment(EVERYONE), services, uow, out, citizen, lang
            )
            return
        choices = await _choices(services, uow, kind, lang)
        t = services.translator
        rows = [
            _button(label, data)
            for label, value in choices
            # Telegram carries at most 64 bytes of button data.
            if len((data := f"{PREFIX}s:{kind}:{value}").encode()) <= 64
        ]
        if not rows:
            out.add(
                SendMessage(
                    chat_id=query.message.chat.id, text=t.text(lang, "broadcast.no_choices")
                )
            )
            return
        out.add(
            SendMessage(
                chat_id=query.message.chat.id,
                text=t.text(lang, f"broadcast.choose.{kind}"),
                reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
            )
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}s:"))
    async def value_chosen(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        kind, _, value = (query.data or "").removeprefix(f"{PREFIX}s:").partition(":")
        out.add(query.answer())
        if kind not in SEGMENT_KINDS or not value or query.message is None:
            return
        await _start(query.message.chat.id, Segment(kind, value), services, uow, out, citizen, lang)

    async def _start(
        chat_id: int,
        segment: Segment,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        draft = await start_broadcast(
            uow, citizen, chat_id=chat_id, segment=segment, now=services.clock.now()
        )
        out.add(
            SendMessage(
                chat_id=chat_id,
                text=services.translator.text(
                    lang,
                    "broadcast.ask_content",
                    segment=_describe(services, segment, lang),
                    count=draft.audience,
                ),
                reply_markup=ForceReply(
                    input_field_placeholder=services.translator.text(lang, "broadcast.placeholder")
                ),
            )
        )

    @router.message(F.reply_to_message.from_user.is_bot)
    async def content(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        photo = message.photo[-1].file_id if message.photo else None
        text = message.html_text if (message.text or message.caption) else None
        if photo is None and text is None:
            if await uow.repos.broadcasts.composing(citizen.id) is None:
                raise SkipHandler  # not about a broadcast: let the other routers have it
            out.add(message.answer(t.text(lang, "broadcast.unsupported")))
            return
        draft = await set_broadcast_content(uow, citizen, text=text, photo_file_id=photo)
        if draft is None:
            raise SkipHandler
        _preview(message.chat.id, draft, services, out, lang)

    def _preview(chat_id: int, draft: Draft, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        out.add(message_of(draft.broadcast, chat_id))
        if draft.audience == 0:
            out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "broadcast.nobody")))
            return
        out.add(
            SendMessage(
                chat_id=chat_id,
                text=t.text(
                    lang,
                    "broadcast.confirm",
                    segment=_describe(services, draft.broadcast.segment, lang),
                    count=draft.audience,
                ),
                reply_markup=yes_no(
                    t.text(lang, "broadcast.send_button", count=draft.audience),
                    f"{PREFIX}go:{draft.broadcast.id}",
                    t.text(lang, "broadcast.cancel_button"),
                    f"{PREFIX}x:{draft.broadcast.id}",
                ),
            )
        )

    @router.callback_query(F.data.startswith(f"{PREFIX}go:"))
    async def send(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        raw = (query.data or "").removeprefix(f"{PREFIX}go:")
        total = await confirm_broadcast(uow, services, citizen, int(raw)) if raw.isdigit() else None
        if total is None:
            out.add(query.answer(t.text(lang, "broadcast.stale"), show_alert=True))
            return
        out.add(query.answer())
        if query.message is not None:
            out.add(
                SendMessage(
                    chat_id=query.message.chat.id,
                    text=t.text(lang, "broadcast.queued", count=total),
                )
            )

    @router.callback_query(F.data.startswith(f"{PREFIX}x:"))
    async def cancel(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        raw = (query.data or "").removeprefix(f"{PREFIX}x:")
        done = raw.isdigit() and await cancel_broadcast(
            uow, citizen, int(raw), services.clock.now()
        )
        out.add(query.answer(t.text(lang, "broadcast.cancelled" if done else "broadcast.stale")))

    return router
