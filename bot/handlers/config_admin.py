"""Administrators export and import configuration files: areas, catalogue, state table.

``/config`` offers the three exports as buttons. A document whose caption or
top-level shape says it is one of ours (a GeoJSON FeatureCollection, a YAML with
``services:`` or ``statuses:``) is validated, kept as a pending import and
summarised with a confirm button; anything else (a flow) passes on to the next
router. The whole router requires the administrator role, buttons included; the
work is done by ``bot.usecases.configuration``, which ``citizenbot config`` shares.
"""

from __future__ import annotations

import io
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.filters import Command, Filter, or_f
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from bot.configfile import CODE_LISTS, FILENAMES, KINDS, ConfigFileError, ImportSummary, Kind
from bot.i18n import Translator
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.staffmenu import StaffMenus
from bot.usecases import configuration as usecase
from bot.usecases.staff import actor_of
from storage.db import UnitOfWork
from storage.records import CitizenRecord

CONFIG_COMMANDS = ("config",)
CONFIG_SUFFIXES = (".geojson", ".json", ".yaml", ".yml")
# Under the admin router's "adm:" prefix, so anyone else's press meets the refusal.
BUTTON_PREFIX = "adm:cfg:"
EXPORT, CONFIRM, CANCEL = "ex", "ok", "no"
# A city's districts as GeoJSON run to a few megabytes; the Bot API serves 20 MB.
MAX_CONFIG_BYTES = 8 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30
MAX_CODES_SHOWN = 15
MAX_TEXT = 4000


def pending_name(kind: str, citizen_id: int) -> str:
    """The config document holding an administrator's file until they confirm it."""
    return f"pending:{kind}:{citizen_id}"


async def _download(bot: Bot, file_id: str) -> bytes | None:
    try:
        file = await bot.get_file(file_id)
        if file.file_path is None:
            return None
        buffer = io.BytesIO()
        await bot.download_file(file.file_path, destination=buffer, timeout=DOWNLOAD_TIMEOUT)
    except (TelegramBadRequest, TelegramNetworkError):
        return None
    return buffer.getvalue()


class ConfigDocumentFilter(Filter):
    """Passes a document that is a configuration file, with its kind and text.

    It reads the file to tell: another router's files (flows) fail it and go on.
    """

    async def __call__(self, message: Message, bot: Bot) -> bool | dict[str, Any]:
        """``config_kind`` and ``config_source`` for our files; False otherwise."""
        document = message.document
        if document is None or (document.file_size or 0) > MAX_CONFIG_BYTES:
            return False
        raw = await _download(bot, document.file_id)
        if raw is None or len(raw) > MAX_CONFIG_BYTES:
            return False
        try:
            source = raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        kind = usecase.detect_kind(source, caption=message.caption)
        if kind is None:
            return False
        return {"config_kind": kind, "config_source": source}


def _button(text: str, *parts: object) -> InlineKeyboardButton:
    data = BUTTON_PREFIX + ":".join(str(part) for part in parts)
    return InlineKeyboardButton(text=text, callback_data=data)


def render_summary(t: Translator, lang: str, summary: ImportSummary) -> str:
    """The changes an import makes, one localised line per kind of change."""
    lines = []
    for name in CODE_LISTS:
        codes: tuple[str, ...] = getattr(summary, name)
        if codes:
            shown = ", ".join(codes[:MAX_CODES_SHOWN])
            if len(codes) > MAX_CODES_SHOWN:
                shown += f" … (+{len(codes) - MAX_CODES_SHOWN})"
            lines.append(t.text(lang, f"config.summary.{name}", count=len(codes), codes=shown))
    for name, count in (
        ("unchanged", summary.unchanged),
        ("moved", summary.reports_moved),
        ("granted", summary.granted),
        ("revoked", summary.revoked),
        ("notified", summary.notified),
        ("promoted", summary.promoted),
    ):
        if count:
            lines.append(t.text(lang, f"config.summary.{name}", count=count))
    return "\n".join(lines)


def _problems(t: Translator, lang: str, filename: str, error: ConfigFileError) -> str:
    header = t.text(lang, "config.invalid", file=escape(filename), count=len(error.problems))
    body = "\n".join(str(problem) for problem in error.problems)
    room = MAX_TEXT - len(header) - 20
    if len(body) > room:
        body = body[:room].rsplit("\n", 1)[0] + "\n…"
    return f"{header}\n<pre>{escape(body, quote=False)}</pre>"


def build_config_admin_router() -> Router:
    """Configuration files for administrators only (private chats)."""
    router = LeanRouter(name="config_admin")
    is_config_file = F.document.file_name.lower().endswith(CONFIG_SUFFIXES)
    # Cheap filters first: the role lookup runs only for this command and such files.
    router.message.filter(
        F.chat.type == "private",
        # or_f, not "|": a MagicFilter or-ed with a Command filter never passes a command.
        or_f(Command(*CONFIG_COMMANDS), is_config_file),
        RequireRole("admin"),
    )
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith(BUTTON_PREFIX), RequireRole("admin")
    )

    @router.message(Command("config"))
    async def show(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        buttons = [[_button(t.text(lang, f"config.button.{kind}"), EXPORT, kind)] for kind in KINDS]
        out.add(
            message.answer(
                t.text(lang, "config.menu"),
                reply_markup=InlineKeyboardMarkup(inline_keyboard=buttons),
            )
        )

    @router.message(ConfigDocumentFilter())
    async def upload(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
        config_kind: Kind,
        config_source: str,
    ) -> None:
        t = services.translator
        assert message.document is not None
        filename = message.document.file_name or FILENAMES[config_kind]
        now = services.clock.now()
        try:
            summary = await usecase.import_file(
                uow,
                config_kind,
                config_source,
                filename=filename,
                languages=t.languages,
                translator=t,
                actor=actor_of(citizen),
                now=now,
                apply=False,
                timezone=services.settings.timezone,
            )
        except ConfigFileError as error:
            out.add(message.answer(_problems(t, lang, filename, error)))
            return
        kind_name = t.text(lang, f"config.kind.{config_kind}")
        if not summary.changed:
            out.add(message.answer(t.text(lang, "config.no_changes", kind=kind_name)))
            return
        revision = await uow.repos.config.save_document(
            pending_name(config_kind, citizen.id), config_source, author=actor_of(citizen), now=now
        )
        text = t.text(lang, "config.confirm", kind=kind_name, file=escape(filename))
        buttons = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    _button(t.text(lang, "config.button.confirm"), CONFIRM, config_kind, revision),
                    _button(t.text(lang, "config.button.cancel"), CANCEL, config_kind, revision),
                ]
            ]
        )
        summary_text = render_summary(t, lang, summary)
        out.add(message.answer(f"{text}\n{summary_text}", reply_markup=buttons))

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
        action, _, rest = (query.data or "").removeprefix(BUTTON_PREFIX).partition(":")
        kind_text, _, revision_text = rest.partition(":")
        kind = next((kind for kind in KINDS if kind == kind_text), None)
        chat_id = query.from_user.id
        if kind is None or action not in (EXPORT, CONFIRM, CANCEL):
            out.add(query.answer(t.text(lang, "error.stale_button")))
            return
        if action == EXPORT:
            source = await usecase.export_file(
                uow,
                kind,
                translator=t,
                languages=t.languages,
                timezone=services.settings.timezone,
                now=services.clock.now(),
            )
            out.add(query.answer())
            out.add(
                SendDocument(
                    chat_id=chat_id,
                    document=BufferedInputFile(source.encode(), filename=FILENAMES[kind]),
                    caption=t.text(
                        lang, "config.exported", kind=t.text(lang, f"config.kind.{kind}")
                    ),
                )
            )
            return
        name = pending_name(kind, citizen.id)
        pending = await uow.repos.config.document(name)
        if pending is None or str(pending.revision) != revision_text:
            out.add(query.answer(t.text(lang, "config.stale"), show_alert=True))
            return
        await uow.repos.config.delete_document(name)
        kind_name = t.text(lang, f"config.kind.{kind}")
        if action == CANCEL:
            out.add(query.answer())
            out.add(SendMessage(chat_id=chat_id, text=t.text(lang, "config.cancelled")))
            return
        try:
            summary = await usecase.import_file(
                uow,
                kind,
                pending.source,
                filename=FILENAMES[kind],
                languages=t.languages,
                translator=t,
                actor=actor_of(citizen),
                now=services.clock.now(),
                timezone=services.settings.timezone,
                menus=StaffMenus(services),
            )
        except ConfigFileError as error:
            out.add(query.answer())
            out.add(SendMessage(chat_id=chat_id, text=_problems(t, lang, FILENAMES[kind], error)))
            return
        out.add(query.answer())
        done = t.text(lang, "config.imported", kind=kind_name)
        out.add(SendMessage(chat_id=chat_id, text=f"{done}\n{render_summary(t, lang, summary)}"))

    return router
