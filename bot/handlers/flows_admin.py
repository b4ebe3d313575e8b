"""Administrators manage dialog flows: upload a draft, preview, publish, roll back.

The whole router requires the administrator role, buttons included; the work is
done by ``bot.usecases.flows``, which ``citizenbot flows`` shares.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from html import escape

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.filters import Command, CommandObject, or_f
from aiogram.methods import SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from babel.dates import format_datetime

from bot.handlers.dialog import send_turn
from bot.i18n import Translator
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.usecases import flows as usecase
from bot.usecases.staff import actor_of
from dialogs import FlowError, Problem
from dialogs.state import MAX_MESSAGE_LENGTH
from storage.db import UnitOfWork
from storage.records import CitizenRecord

FLOW_COMMANDS = ("flows",)
FLOW_SUFFIXES = (".yaml", ".yml")
# Under the admin router's "adm:" prefix, so anyone else's press meets the refusal.
BUTTON_PREFIX = "adm:fl:"
PREVIEW, PUBLISH, DISCARD = "prev", "pub", "del"
# Flows are a few kilobytes; the download happens inside the update's transaction.
MAX_FLOW_BYTES = 256 * 1024
DOWNLOAD_TIMEOUT = 10
# Buttons per flow in the overview; /flows FLOW lists them all.
OVERVIEW_BUTTONS = 4
MAX_BUTTONS = 90


def _button(text: str, action: str, revision_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=f"{BUTTON_PREFIX}{action}:{revision_id}")


def _draft_buttons(t: Translator, lang: str, revision_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t.text(lang, "flows.button.preview"), PREVIEW, revision_id),
                _button(t.text(lang, "flows.button.publish"), PUBLISH, revision_id),
                _button(t.text(lang, "flows.button.discard"), DISCARD, revision_id),
            ]
        ]
    )


def _problem_lines(problems: Sequence[Problem]) -> str:
    """``line: message`` per problem: the file is the one the administrator just sent."""
    return "\n".join(f"{problem.line}: {problem.message}" for problem in problems)


def _say(chat_id: int, text: str) -> SendMessage:
    return SendMessage(chat_id=chat_id, text=text)


def _with_problems(header: str, problems: Sequence[Problem]) -> str:
    """``header`` then the problems as preformatted ``line: message`` lines, within one message."""
    lines = _fit(_problem_lines(problems), MAX_MESSAGE_LENGTH - len(header) - 1)
    return f"{header}\n<pre>{escape(lines, quote=False)}</pre>"


def _fit(text: str, room: int) -> str:
    """``text`` cut at a line end to at most ``room`` characters."""
    if len(text) <= room:
        return text
    cut = text[: max(room - 2, 0)]
    return cut[: cut.rfind("\n") + 1 or len(cut)] + "…"


def _when(revision: usecase.Revision, lang: str) -> str:
    return format_datetime(revision.created_at, "d MMM yyyy HH:mm", locale=lang)


def _name(revision: usecase.Revision | None, t: Translator, lang: str) -> str:
    if revision is None:
        return t.text(lang, "flows.list.none")
    return usecase.revision_name(revision.flow_id, revision.number)


def render_history(
    t: Translator, lang: str, histories: Sequence[usecase.FlowHistory], *, buttons_per_flow: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /flows text and its buttons: publish a draft, roll back to an earlier revision."""
    lines = [t.text(lang, "flows.list.title")]
    rows: list[list[InlineKeyboardButton]] = []
    for history in histories:
        published = history.published
        lines.append(
            t.text(
                lang,
                "flows.list.line",
                flow=history.flow_id,
                published=published.number if published else t.text(lang, "flows.list.none"),
                author=published.author if published else "",
                when=_when(published, lang) if published else "",
                drafts=", ".join(str(d.number) for d in history.drafts)
                or t.text(lang, "flows.list.none"),
            )
        )
        offered = [
            _button(
                t.text(lang, "flows.button.draft", flow=d.flow_id, number=d.number), PREVIEW, d.id
            )
            for d in history.drafts[:buttons_per_flow]
        ] + [
            _button(
                t.text(lang, "flows.button.rollback", flow=r.flow_id, number=r.number),
                PUBLISH,
                r.id,
            )
            for r in history.earlier[:buttons_per_flow]
        ]
        rows.extend(offered[i : i + 2] for i in range(0, len(offered), 2))
    lines.append(t.text(lang, "flows.list.hint"))
    markup = InlineKeyboardMarkup(inline_keyboard=rows[: MAX_BUTTONS // 2]) if rows else None
    return _fit("\n".join(lines), MAX_MESSAGE_LENGTH), markup


async def _download(bot: Bot, file_id: str) -> bytes | None:
    """The document's bytes through the Bot API; None when Telegram cannot give them."""
    try:
        file = await bot.get_file(file_id)
        if file.file_path is None:
            return None
        buffer = io.BytesIO()
        await bot.download_file(file.file_path, destination=buffer, timeout=DOWNLOAD_TIMEOUT)
    except (TelegramBadRequest, TelegramNetworkError):
        return None
    return buffer.getvalue()


def build_flows_admin_router() -> Router:
    """Flow management for administrators only (private chats)."""
    router = LeanRouter(name="flows_admin")
    is_flow_file = F.document.file_name.lower().endswith(FLOW_SUFFIXES)
    # Cheap filters first: the role lookup runs only for these commands and files.
    router.message.filter(
        F.chat.type == "private", or_f(Command(*FLOW_COMMANDS), is_flow_file), RequireRole("admin")
    )
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith(BUTTON_PREFIX), RequireRole("admin")
    )

    @router.message(Command("flows"))
    async def list_flows(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        lang: str,
    ) -> None:
        t = services.translator
        wanted = (command.args or "").strip()
        if wanted:
            try:
                histories = [await usecase.flow_history(uow, wanted)]
            except usecase.UnknownFlowError:
                out.add(message.answer(t.text(lang, "flows.unknown_flow", flow=wanted)))
                return
            per_flow = MAX_BUTTONS
        else:
            histories = await usecase.flow_histories(uow)
            per_flow = OVERVIEW_BUTTONS
        if not histories:
            out.add(message.answer(t.text(lang, "flows.list.empty")))
            return
        text, markup = render_history(t, lang, histories, buttons_per_flow=per_flow)
        out.add(message.answer(text, reply_markup=markup))

    @router.message(is_flow_file)
    async def upload(
        message: Message,
        bot: Bot,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        document = message.document
        assert document is not None
        filename = document.file_name or "flow.yaml"
        if (document.file_size or 0) > MAX_FLOW_BYTES:
            limit = MAX_FLOW_BYTES // 1024
            out.add(message.answer(t.text(lang, "flows.upload.too_large", limit=limit)))
            return
        raw = await _download(bot, document.file_id)
        try:
            source = None if raw is None else raw.decode("utf-8")
        except UnicodeDecodeError:
            source = None
        if raw is None or source is None:
            out.add(message.answer(t.text(lang, "flows.upload.unreadable")))
            return
        if len(raw) > MAX_FLOW_BYTES:
            limit = MAX_FLOW_BYTES // 1024
            out.add(message.answer(t.text(lang, "flows.upload.too_large", limit=limit)))
            return
        catalog = services.conversations.catalog
        try:
            draft = await usecase.save_draft(
                uow,
                catalog,
                source,
                filename=filename,
                author=actor_of(citizen),
                now=services.clock.now(),
            )
        except FlowError as error:
            header = t.text(lang, "flows.upload.invalid", file=filename, count=len(error.problems))
            out.add(message.answer(_with_problems(header, error.problems)))
            return
        name = usecase.revision_name(draft.revision.flow_id, draft.revision.number)
        if not draft.created:
            key = "flows.draft.published" if draft.revision.published else "flows.draft.identical"
            out.add(message.answer(t.text(lang, key, revision=name)))
            if draft.revision.published:
                return
        elif draft.published is None:
            out.add(message.answer(t.text(lang, "flows.draft.new_flow", revision=name)))
        else:
            published = _name(draft.published, t, lang)
            out.add(
                message.answer(
                    t.text(lang, "flows.draft.saved", revision=name, published=published)
                )
            )
        await _send_diff(message, out, t, lang, draft, name)

    async def _send_diff(
        message: Message,
        out: Outgoing,
        t: Translator,
        lang: str,
        draft: usecase.Draft,
        name: str,
    ) -> None:
        buttons = _draft_buttons(t, lang, draft.revision.id)
        diff = draft.diff or t.text(lang, "flows.draft.no_changes")
        if len(diff) <= MAX_MESSAGE_LENGTH:
            out.add(message.answer(f"<pre>{escape(diff, quote=False)}</pre>", reply_markup=buttons))
            return
        note = t.text(lang, "flows.diff.attached")
        shown = _fit(diff, MAX_MESSAGE_LENGTH - len(note) - 2)
        out.add(message.answer(f"<pre>{escape(shown, quote=False)}</pre>\n{note}"))
        out.add(
            message.answer_document(
                BufferedInputFile(draft.diff.encode(), filename=f"{name}.diff"),
                caption=t.text(lang, "flows.diff.caption", revision=name),
                reply_markup=buttons,
            )
        )

    @router.callback_query(F.data.startswith(BUTTON_PREFIX))
    async def press(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        action, _, raw_id = (query.data or "").removeprefix(BUTTON_PREFIX).partition(":")
        revision = await usecase.revision_by_id(uow, int(raw_id)) if raw_id.isdigit() else None
        if revision is None or action not in (PREVIEW, PUBLISH, DISCARD):
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        out.add(query.answer())
        chat_id = query.from_user.id
        name = usecase.revision_name(revision.flow_id, revision.number)
        now = services.clock.now()
        actor = actor_of(citizen)
        if action == PREVIEW:
            turn = await services.conversations.start_preview(uow, citizen, revision.id)
            out.add(_say(chat_id, t.text(lang, "preview.started", revision=name)))
            await send_turn(services, uow, out, turn, chat_id=chat_id, language=lang)
            return
        if action == DISCARD:
            try:
                await usecase.discard(uow, revision.flow_id, revision.number, actor=actor, now=now)
            except usecase.PublishedDiscardError:
                out.add(_say(chat_id, t.text(lang, "flows.discard_published", revision=name)))
                return
            out.add(_say(chat_id, t.text(lang, "flows.discarded", revision=name)))
            return
        try:
            publication = await usecase.publish(
                uow,
                services.conversations.catalog,
                revision.flow_id,
                revision.number,
                actor=actor,
                now=now,
            )
        except FlowError as error:
            text = t.text(lang, "flows.broken", revision=name)
            out.add(_say(chat_id, _with_problems(text, error.problems)))
            return
        if not publication.changed:
            out.add(_say(chat_id, t.text(lang, "flows.already_published", revision=name)))
            return
        key = (
            "flows.rolled_back" if publication.action == usecase.ROLLED_BACK else "flows.published"
        )
        previous = _name(publication.previous, t, lang)
        out.add(_say(chat_id, t.text(lang, key, revision=name, previous=previous)))

    return router
