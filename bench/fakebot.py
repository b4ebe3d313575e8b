"""An aiogram session that talks to no server, and Telegram updates built by hand.

``RecordingSession`` does what the bot's own session does up to the socket
(serialise the call into the request's body: aiogram's form, as a typical aiogram bot
sends it, or citizenbot's JSON document, see ``bot.runtime.tuning.JsonSession``) and
after it (parse a JSON answer into aiogram objects with ``check_response``), so the
cost of a call stays in the measurement while the network does not. It records what
the bot sent per chat, so a simulated citizen can press the buttons the bot actually
offered.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import FormData

from bot.runtime.tuning import JsonSession

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "citizenbot", "username": "citizenbot_bot"}
BENCH_TOKEN = "4242:bench-token-not-used-on-any-network"  # never leaves the process


@dataclass(slots=True)
class SentMessage:
    """A message the bot sent (or edited), as the citizen sees it."""

    message_id: int
    text: str
    buttons: list[tuple[str, str]] = field(default_factory=list)  # inline: (text, data)
    keyboard: list[str] = field(default_factory=list)  # reply keyboard texts
    inline_markup: dict[str, Any] | None = None


def _inline_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not markup or "inline_keyboard" not in markup:
        return []
    return [
        (button["text"], button.get("callback_data", ""))
        for row in markup["inline_keyboard"]
        for button in row
    ]


def _keyboard(markup: dict[str, Any] | None) -> list[str]:
    if not markup or "keyboard" not in markup:
        return []
    return [button["text"] for row in markup["keyboard"] for button in row]


class RecordingSession(BaseSession):
    """Answers every Bot API method locally with a plausible result."""

    def __init__(
        self, *, keep_history: bool = True, encoding: Literal["form", "json"] = "form"
    ) -> None:
        super().__init__()
        self.keep_history = keep_history
        # "form": aiogram's AiohttpSession; "json": citizenbot's JsonSession.
        self._json = JsonSession() if encoding == "json" else None
        if self._json is not None:  # it reads answers its own way too
            self.json_loads = self._json.json_loads
        self.calls: Counter[str] = Counter()
        self.chats: dict[int, list[SentMessage]] = {}
        self._message_ids = itertools.count(1_000_000)

    async def close(self) -> None:
        """Nothing to close."""

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        """No files in these benchmarks."""
        yield b""

    def _serialise(self, bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any]:
        """The request's body built and encoded as the real session does; its parameters."""
        if self._json is not None:
            payload = self._json.json_payload(bot, method)
            if payload is not None:  # no file: the benchmarks upload none
                self._json.json_dumps(payload)
                return payload
        # What AiohttpSession.build_form_data adds to its form, and the form's encoding.
        files: dict[str, Any] = {}
        form = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                form[key] = prepared
        FormData(list(form.items()), quote_fields=False)()
        return form

    def _message(self, form: dict[str, Any], message_id: int | None = None) -> dict[str, Any]:
        chat_id = int(form["chat_id"])
        markup = form.get("reply_markup")
        if isinstance(markup, str):  # JSON-encoded in a form
            markup = json.loads(markup)
        sent = SentMessage(
            message_id=message_id or next(self._message_ids),
            text=form.get("text", ""),
            buttons=_inline_buttons(markup),
            keyboard=_keyboard(markup),
            inline_markup=markup if markup and "inline_keyboard" in markup else None,
        )
        if self.keep_history:
            history = self.chats.setdefault(chat_id, [])
            if message_id is not None:
                history[:] = [m for m in history if m.message_id != message_id]
            history.append(sent)
            del history[:-4]  # a citizen only ever looks at the last few messages
        result: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Citizen"},
            "from": BOT_USER,
            "text": sent.text,
        }
        if sent.inline_markup:
            result["reply_markup"] = sent.inline_markup  # Telegram echoes inline keyboards only
        return result

    def _result(self, name: str, form: dict[str, Any]) -> Any:
        if name == "sendMessage":
            return self._message(form)
        if name == "editMessageText" and "chat_id" in form:
            return self._message(form, message_id=int(form["message_id"]))
        if name == "getMe":
            return BOT_USER
        if name == "getUpdates":
            return []
        return True

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        """Serialise the call, answer it, parse the answer: everything but the network."""
        name = method.__api_method__
        self.calls[name] += 1
        form = self._serialise(bot, method)
        content = json.dumps({"ok": True, "result": self._result(name, form)})
        if self._json is not None:  # citizenbot's session reads the answer its own way
            return self._json.read_answer(bot, method, 200, content)  # type: ignore[no-any-return]
        response = self.check_response(bot=bot, method=method, status_code=200, content=content)
        return response.result  # type: ignore[return-value]

    def last_with_buttons(self, chat_id: int) -> SentMessage | None:
        """The newest message in the chat that carries inline buttons."""
        for message in reversed(self.chats.get(chat_id, [])):
            if message.buttons:
                return message
        return None

    def last(self, chat_id: int) -> SentMessage | None:
        """The newest message in the chat."""
        history = self.chats.get(chat_id)
        return history[-1] if history else None


# --- updates as Telegram sends them ---------------------------------------------------


class UpdateFactory:
    """Builds update documents (JSON dicts) with increasing ids, like the Bot API."""

    def __init__(self, first_update_id: int = 1) -> None:
        self._update_ids = itertools.count(first_update_id)
        self._message_ids = itertools.count(1)

    @staticmethod
    def user(user_id: int, language: str = "en") -> dict[str, Any]:
        """A Telegram user object for a citizen."""
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"Citizen{user_id}",
            "username": f"citizen{user_id}",
            "language_code": language,
        }

    def _message(self, user: dict[str, Any], **content: Any) -> dict[str, Any]:
        return {
            "update_id": next(self._update_ids),
            "message": {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {
                    "id": user["id"],
                    "type": "private",
                    "first_name": user["first_name"],
                    "username": user["username"],
                },
                "from": user,
                **content,
            },
        }

    def text(self, user: dict[str, Any], text: str) -> dict[str, Any]:
        """A text message; commands carry their ``bot_command`` entity as Telegram adds it."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self._message(user, **content)

    def location(self, user: dict[str, Any], latitude: float, longitude: float) -> dict[str, Any]:
        """A shared pin."""
        return self._message(user, location={"latitude": latitude, "longitude": longitude})

    def callback(self, user: dict[str, Any], pressed: SentMessage, data: str) -> dict[str, Any]:
        """A press on an inline button of a message the bot sent."""
        message: dict[str, Any] = {
            "message_id": pressed.message_id,
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": BOT_USER,
            "text": pressed.text,
        }
        if pressed.inline_markup:
            message["reply_markup"] = pressed.inline_markup
        return {
            "update_id": next(self._update_ids),
            "callback_query": {
                "id": str(next(self._update_ids)),
                "from": user,
                "chat_instance": str(user["id"]),
                "data": data,
                "message": message,
            },
        }


def new_bot(session: BaseSession) -> Bot:
    """A Bot on ``session`` with the product's defaults (HTML parse mode)."""
    from aiogram.client.default import DefaultBotProperties
    from aiogram.enums import ParseMode

    return Bot(
        token=BENCH_TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )
