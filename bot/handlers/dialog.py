"""Citizens in conversation with a flow: starting, answering, switching, cancelling."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, Message

from bot.conversation.render import render
from bot.conversation.service import Turn
from bot.keyboards import flow_for_command, flow_for_keywords, flow_for_menu_text, yes_no
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from dialogs import (
    CALLBACK_PREFIX,
    ButtonInput,
    CommandInput,
    Input,
    LocationInput,
    PhotoInput,
    Status,
    TextInput,
    UnsupportedInput,
)
from storage.db import UnitOfWork
from storage.records import CitizenRecord

SWITCH_PREFIX = "sw:"


def input_of(message: Message) -> Input:
    """What the citizen sent, in the engine's terms."""
    if message.location is not None:
        return LocationInput(message.location.latitude, message.location.longitude)
    if message.photo:
        largest = message.photo[-1]
        return PhotoInput(largest.file_id, largest.file_unique_id)
    if message.text is not None:
        return TextInput(message.text)
    return UnsupportedInput(str(message.content_type))


async def send_turn(
    services: Services,
    uow: UnitOfWork,
    out: Outgoing,
    turn: Turn,
    *,
    chat_id: int,
    language: str,
    pressed_message_id: int | None = None,
) -> None:
    """Queue a turn's messages; when the flow ended, bring back the main menu."""
    closing = None
    if turn.status is Status.FINISHED:
        # A finished flow may have saved a report with photos to fetch.
        services.signals.photos_pending.set()
    if turn.ended:
        menu = await services.main_menu(uow, language)
        closing = (menu, services.translator.text(language, "menu.prompt"))
    # What a finished flow did (a report's number, a sign-up) must reach the citizen
    # even if the bot dies right after the commit; so must news for other citizens.
    done = turn.status is Status.FINISHED
    for method in render(
        turn.messages, chat_id=chat_id, pressed_message_id=pressed_message_id, closing=closing
    ):
        out.add(method, keep=done)
    for citizen_chat, text in turn.notices:
        out.add(SendMessage(chat_id=citizen_chat, text=text), keep=True)


async def begin(
    services: Services,
    uow: UnitOfWork,
    out: Outgoing,
    citizen: CitizenRecord,
    flow_id: str,
    *,
    chat_id: int,
) -> None:
    """Start a flow, or ask first when another one is open."""
    conversations = services.conversations
    session = await conversations.open_session(uow, citizen)
    t, lang = services.translator, citizen.language
    if session is not None and session.flow_id == flow_id:
        turn = await conversations.reprompt(uow, citizen)
        assert turn is not None
        await send_turn(services, uow, out, turn, chat_id=chat_id, language=lang)
        return
    if session is not None:
        published = await conversations.published(uow)
        current = await conversations.catalog.revision(uow, session.revision_id)
        wanted = published[flow_id].flow
        question = t.text(
            lang,
            "flow.switch_question",
            current=current.title(lang),
            new=wanted.title(lang),
        )
        buttons = yes_no(
            t.text(lang, "flow.switch_yes"),
            f"{SWITCH_PREFIX}{flow_id}",
            t.text(lang, "flow.switch_no"),
            SWITCH_PREFIX,
        )
        out.add(SendMessage(chat_id=chat_id, text=question, reply_markup=buttons))
        return
    turn = await conversations.start(uow, citizen, flow_id)
    await send_turn(services, uow, out, turn, chat_id=chat_id, language=lang)


def build_dialog_router() -> Router:
    """Flows: their triggers, the answers to their questions, /cancel."""
    router = LeanRouter(name="dialog")
    router.message.filter(F.chat.type == "private")
    router.callback_query.filter(F.message.chat.type == "private")

    @router.message(Command("cancel", "back", "skip"))
    async def conversation_command(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        # Typed commands do what the Cancel, Back and Skip buttons do, for phones
        # that hide inline buttons.
        name = command.command.lower()
        turn = await services.conversations.handle(uow, citizen, CommandInput(name))
        if turn is None:
            text = services.translator.text(lang, "flow.no_conversation")
            out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))
            return
        await send_turn(services, uow, out, turn, chat_id=message.chat.id, language=lang)

    @router.message(F.text.startswith("/"))
    async def flow_command(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        command = (message.text or "/").split()[0][1:].split("@")[0]
        published = await services.conversations.published(uow)
        flow_id = flow_for_command(published, command)
        if flow_id is None:
            text = services.translator.text(lang, "fallback.unknown_command")
            out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))
            return
        await begin(services, uow, out, citizen, flow_id, chat_id=message.chat.id)

    @router.callback_query(F.data.startswith(SWITCH_PREFIX))
    async def switch(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        out.add(query.answer())
        flow_id = (query.data or "").removeprefix(SWITCH_PREFIX)
        chat_id = query.from_user.id
        conversations = services.conversations
        if not flow_id:
            turn = await conversations.reprompt(uow, citizen)
            if turn is not None:
                await send_turn(services, uow, out, turn, chat_id=chat_id, language=lang)
            return
        if flow_id not in await conversations.published(uow):
            out.add(query.answer(services.translator.text(lang, "error.stale_button")))
            return
        await uow.repos.sessions.end(citizen.id)
        turn = await conversations.start(uow, citizen, flow_id)
        await send_turn(services, uow, out, turn, chat_id=chat_id, language=lang)

    @router.callback_query(F.data.startswith(CALLBACK_PREFIX))
    async def answer_button(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        turn = await services.conversations.handle(uow, citizen, ButtonInput(query.data or ""))
        if turn is None:
            out.add(query.answer(services.translator.text(lang, "error.stale_button")))
            return
        out.add(query.answer())
        pressed = query.message.message_id if query.message is not None else None
        await send_turn(
            services,
            uow,
            out,
            turn,
            chat_id=query.from_user.id,
            language=lang,
            pressed_message_id=pressed,
        )

    @router.message()
    async def answer_message(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        conversations = services.conversations
        published = await conversations.published(uow)
        menu_flow = flow_for_menu_text(published, message.text or "") if message.text else None
        if menu_flow is not None:
            await begin(services, uow, out, citizen, menu_flow, chat_id=message.chat.id)
            return
        turn = await conversations.handle(uow, citizen, input_of(message))
        if turn is not None:
            await send_turn(services, uow, out, turn, chat_id=message.chat.id, language=lang)
            return
        keyword_flow = (
            flow_for_keywords(published, message.text or "", lang) if message.text else None
        )
        if keyword_flow is not None:
            await begin(services, uow, out, citizen, keyword_flow, chat_id=message.chat.id)
            return
        text = services.translator.text(lang, "fallback.unknown")
        out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))

    return router
