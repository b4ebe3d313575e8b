"""Python client of the emulator's user-side API, for tests and scripts.

    async with EmulatorClient("http://127.0.0.1:8081") as emulator:
        sent = await emulator.send_text(100001, "/start")
        reply = await emulator.wait_for_bot_message(100001, after=sent.message_id)
        await emulator.press_button(100001, reply.message_id, text="Report an issue")

Tests wait on conditions with a deadline (`wait_for_bot_message`, `wait_until`,
`wait_for_call`), which long-poll the emulator: no sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import aiohttp

from bot.emulator.types import FaultRule, Persona, RateLimits

__all__ = [
    "BotInfo",
    "ButtonPress",
    "CallLogEntry",
    "CallbackAnswer",
    "ChatHistory",
    "ChatMessage",
    "EmulatorClient",
    "EmulatorError",
    "FaultRule",
    "InlineButton",
    "Persona",
    "RateLimits",
    "SentMessage",
]


class EmulatorError(Exception):
    """The emulator refused a user-side request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class InlineButton:
    """One inline keyboard button."""

    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message of a chat's history, user's or bot's, in its current state."""

    message_id: int
    from_bot: bool
    revision: int
    deleted: bool
    raw: dict[str, Any]
    reply_keyboard: dict[str, Any] | None = None
    file_url: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ChatMessage:
        """Build from a history entry."""
        return cls(
            message_id=int(raw["message_id"]),
            from_bot=bool(raw["from_bot"]),
            revision=int(raw["revision"]),
            deleted=bool(raw["deleted"]),
            raw=dict(raw["message"]),
            reply_keyboard=raw.get("reply_keyboard"),
            file_url=raw.get("file_url"),
        )

    @property
    def text(self) -> str | None:
        """The text of a text message."""
        return self.raw.get("text")

    @property
    def caption(self) -> str | None:
        """The caption of a media message."""
        return self.raw.get("caption")

    @property
    def content(self) -> str:
        """The text, else the caption, else an empty string."""
        return self.text or self.caption or ""

    @property
    def entities(self) -> list[dict[str, Any]]:
        """Entities of the text or of the caption."""
        return list(self.raw.get("entities") or self.raw.get("caption_entities") or [])

    @property
    def edited(self) -> bool:
        """True once the message was edited."""
        return "edit_date" in self.raw

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        """The inline keyboard, if any."""
        return self.raw.get("reply_markup")

    @property
    def buttons(self) -> list[InlineButton]:
        """Inline buttons, row by row."""
        markup = self.reply_markup or {}
        return [
            InlineButton(b["text"], b.get("callback_data"), b.get("url"))
            for row in markup.get("inline_keyboard", [])
            for b in row
        ]

    @property
    def button_texts(self) -> list[str]:
        """Visible texts of the inline buttons."""
        return [button.text for button in self.buttons]

    def describe(self) -> str:
        """A one-line summary for assertion and timeout messages."""
        who = "bot" if self.from_bot else "user"
        kind = next(
            (
                k
                for k in ("photo", "document", "location", "voice", "sticker", "contact")
                if k in self.raw
            ),
            None,
        )
        body = repr(self.content[:60]) if self.content else f"<{kind or 'empty'}>"
        if kind and self.content:
            body = f"<{kind}> {body}"
        extras = []
        if self.buttons:
            extras.append("buttons: " + ", ".join(self.button_texts))
        if self.edited:
            extras.append("edited")
        if self.deleted:
            extras.append("deleted")
        suffix = f" [{'; '.join(extras)}]" if extras else ""
        return f"#{self.message_id} {who} {body}{suffix}"


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """The bot's answerCallbackQuery to a button press."""

    callback_query_id: str
    message_id: int | None
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None
    revision: int
    date: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CallbackAnswer:
        """Build from the emulator's JSON."""
        return cls(
            callback_query_id=str(raw["callback_query_id"]),
            message_id=raw.get("message_id"),
            data=raw.get("data"),
            text=raw.get("text"),
            show_alert=bool(raw.get("show_alert")),
            url=raw.get("url"),
            revision=int(raw.get("revision", 0)),
            date=int(raw.get("date", 0)),
        )


@dataclass(frozen=True, slots=True)
class ChatHistory:
    """A chat as the history endpoint returns it."""

    chat: dict[str, Any] | None
    revision: int
    messages: list[ChatMessage]
    keyboard: dict[str, Any] | None
    callback_answers: list[CallbackAnswer]
    chat_action: dict[str, Any] | None
    blocked: bool

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ChatHistory:
        """Build from the emulator's JSON."""
        return cls(
            chat=raw.get("chat"),
            revision=int(raw["revision"]),
            messages=[ChatMessage.from_json(m) for m in raw["messages"]],
            keyboard=raw.get("keyboard"),
            callback_answers=[CallbackAnswer.from_json(a) for a in raw["callback_answers"]],
            chat_action=raw.get("chat_action"),
            blocked=bool(raw.get("blocked")),
        )

    @property
    def bot_messages(self) -> list[ChatMessage]:
        """The bot's messages that were not deleted."""
        return [m for m in self.messages if m.from_bot and not m.deleted]

    @property
    def keyboard_texts(self) -> list[str]:
        """Texts of the reply keyboard the user currently has, if any."""
        if not self.keyboard:
            return []
        return [button["text"] for row in self.keyboard.get("keyboard", []) for button in row]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the user sent, and the update it produced."""

    message: dict[str, Any]
    update_id: int | None

    @property
    def message_id(self) -> int:
        """The new message's id."""
        return int(self.message["message_id"])


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """A callback query the user caused, with the bot's answer if it came in time."""

    callback_query_id: str
    update_id: int | None
    answer: CallbackAnswer | None


@dataclass(frozen=True, slots=True)
class CallLogEntry:
    """One Bot API call the bot made."""

    seq: int
    time: float
    bot_id: int | None
    method: str
    params: dict[str, Any]
    status: int
    ok: bool
    description: str | None
    message_id: int | None
    chat_id: int | None
    source: str
    dropped: bool = False
    update_ids: list[int] | None = None  # what a getUpdates call returned

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CallLogEntry:
        """Build from the emulator's JSON."""
        return cls(
            seq=int(raw["seq"]),
            time=float(raw["time"]),
            bot_id=raw.get("bot_id"),
            method=str(raw["method"]),
            params=dict(raw.get("params") or {}),
            status=int(raw["status"]),
            ok=bool(raw["ok"]),
            description=raw.get("description"),
            message_id=raw.get("message_id"),
            chat_id=raw.get("chat_id"),
            source=str(raw.get("source", "http")),
            dropped=bool(raw.get("dropped", False)),
            update_ids=raw.get("update_ids"),
        )


@dataclass(frozen=True, slots=True)
class BotInfo:
    """The bot the emulator serves."""

    id: int | None
    username: str
    first_name: str
    connected: bool
    mode: str
    webhook_url: str | None
    pending_update_count: int


@dataclass(slots=True)
class _Query:
    values: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, value: object) -> _Query:
        if value is not None:
            self.values[key] = str(value)
        return self


def _describe_predicate(predicate: Callable[..., Any] | None, description: str | None) -> str:
    if description:
        return description
    if predicate is None:
        return "any bot message"
    name = getattr(predicate, "__name__", repr(predicate))
    return "the predicate " + name


class EmulatorClient:
    """Async client of the `/emulator/` API; use as `async with EmulatorClient(url)`."""

    def __init__(
        self,
        base_url: str,
        *,
        bot_id: int | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.bot_id = bot_id
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> Self:
        self._http()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if the client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: aiohttp.FormData | None = None,
        query: _Query | None = None,
    ) -> Any:
        params = dict(query.values) if query else {}
        if self.bot_id is not None:
            params["bot_id"] = str(self.bot_id)
        async with self._http().request(
            method, self.base_url + path, json=json_body, data=data, params=params
        ) as response:
            if response.content_type == "application/json":
                body = await response.json()
            else:
                body = {"error": await response.text()}
            if response.status >= 400:
                raise EmulatorError(response.status, str(body.get("error", body)))
            return body

    # --- users ---------------------------------------------------------------------------

    async def personas(self) -> list[Persona]:
        """The personas the emulator offers."""
        body = await self._request("GET", "/emulator/personas")
        return [Persona.from_json(p) for p in body["personas"]]

    async def set_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """Set a user's profile once, for every later call acting as them."""
        profile = {
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
        body = {key: value for key, value in profile.items() if value is not None}
        result: dict[str, Any] = await self._request(
            "PUT", f"/emulator/users/{user_id}", json_body=body
        )
        return result

    # --- acting as a user ------------------------------------------------------------------

    async def _send(self, chat_id: int, body: dict[str, Any]) -> SentMessage:
        result = await self._request("POST", f"/emulator/chats/{chat_id}/messages", json_body=body)
        return SentMessage(result["message"], result.get("update_id"))

    @staticmethod
    def _common(
        user: Mapping[str, Any] | None, reply_to: int | None, chat_title: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if user:
            body["from"] = dict(user)
        if reply_to is not None:
            body["reply_to_message_id"] = reply_to
        if chat_title:
            body["chat_title"] = chat_title
        return body

    async def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user: Mapping[str, Any] | None = None,
        reply_to: int | None = None,
        chat_title: str | None = None,
    ) -> SentMessage:
        """Send a text (a command if it starts with "/"). `user` is the `from` profile."""
        body = {"text": text, **self._common(user, reply_to, chat_title)}
        return await self._send(chat_id, body)

    async def send_location(
        self,
        chat_id: int,
        latitude: float,
        longitude: float,
        *,
        user: Mapping[str, Any] | None = None,
        reply_to: int | None = None,
    ) -> SentMessage:
        """Share a location pin."""
        body = {
            "location": {"latitude": latitude, "longitude": longitude},
            **self._common(user, reply_to),
        }
        return await self._send(chat_id, body)

    async def _send_file(
        self,
        chat_id: int,
        kind: str,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None,
        caption: str | None,
        user: Mapping[str, Any] | None,
        reply_to: int | None,
    ) -> SentMessage:
        form = aiohttp.FormData()
        form.add_field(kind, data, filename=file_name, content_type=mime_type)
        if caption:
            form.add_field("caption", caption)
        for key, value in self._common(user, reply_to).items():
            form.add_field(key, json.dumps(value) if isinstance(value, dict) else str(value))
        result = await self._request("POST", f"/emulator/chats/{chat_id}/messages", data=form)
        return SentMessage(result["message"], result.get("update_id"))

    async def send_photo(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str = "photo.jpg",
        caption: str | None = None,
        user: Mapping[str, Any] | None = None,
        reply_to: int | None = None,
    ) -> SentMessage:
        """Send a photo (uploaded as multipart)."""
        return await self._send_file(
            chat_id,
            "photo",
            data,
            file_name=file_name,
            mime_type=None,
            caption=caption,
            user=user,
            reply_to=reply_to,
        )

    async def send_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
        user: Mapping[str, Any] | None = None,
        reply_to: int | None = None,
    ) -> SentMessage:
        """Send a document with its name and mime type."""
        return await self._send_file(
            chat_id,
            "document",
            data,
            file_name=file_name,
            mime_type=mime_type,
            caption=caption,
            user=user,
            reply_to=reply_to,
        )

    async def send_sticker(
        self, chat_id: int, emoji: str = "👍", *, user: Mapping[str, Any] | None = None
    ) -> SentMessage:
        """Send a sticker standing for `emoji`."""
        return await self._send(chat_id, {"sticker": {"emoji": emoji}, **self._common(user, None)})

    async def send_voice(
        self,
        chat_id: int,
        *,
        duration: int = 2,
        data: bytes = b"",
        user: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """Send a voice note."""
        voice = {"duration": duration, "data": base64.b64encode(data).decode()}
        return await self._send(chat_id, {"voice": voice, **self._common(user, None)})

    async def send_contact(
        self,
        chat_id: int,
        phone_number: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        user: Mapping[str, Any] | None = None,
    ) -> SentMessage:
        """Share a contact (by default the sender's own, as `request_contact` does)."""
        contact: dict[str, Any] = {"phone_number": phone_number}
        if first_name:
            contact["first_name"] = first_name
        if last_name:
            contact["last_name"] = last_name
        return await self._send(chat_id, {"contact": contact, **self._common(user, None)})

    async def edit_message(
        self, chat_id: int, message_id: int, *, text: str | None = None, caption: str | None = None
    ) -> SentMessage:
        """Edit one of the user's messages: an `edited_message` update."""
        body = {"text": text} if text is not None else {"caption": caption}
        result = await self._request(
            "PATCH", f"/emulator/chats/{chat_id}/messages/{message_id}", json_body=body
        )
        return SentMessage(result["message"], result.get("update_id"))

    async def press_button(
        self,
        chat_id: int,
        message_id: int,
        *,
        data: str | None = None,
        text: str | None = None,
        user: Mapping[str, Any] | None = None,
        wait_answer: float = 0.0,
    ) -> ButtonPress:
        """Press an inline button by its callback_data or its visible text.

        With `wait_answer`, waits up to that many seconds for answerCallbackQuery.
        """
        body: dict[str, Any] = {"wait_answer": wait_answer}
        if data is not None:
            body["data"] = data
        if text is not None:
            body["text"] = text
        if user:
            body["from"] = dict(user)
        result = await self._request(
            "POST", f"/emulator/chats/{chat_id}/messages/{message_id}/press", json_body=body
        )
        answer = result.get("answer")
        return ButtonPress(
            str(result["callback_query_id"]),
            result.get("update_id"),
            CallbackAnswer.from_json(answer) if answer else None,
        )

    async def block(self, user_id: int) -> int | None:
        """The user blocks the bot; returns the my_chat_member update id."""
        result = await self._request("POST", f"/emulator/chats/{user_id}/block", json_body={})
        update_id: int | None = result.get("update_id")
        return update_id

    async def unblock(self, user_id: int) -> int | None:
        """The user unblocks (restarts) the bot."""
        result = await self._request("POST", f"/emulator/chats/{user_id}/unblock", json_body={})
        update_id: int | None = result.get("update_id")
        return update_id

    async def inject_update(self, update: Mapping[str, Any]) -> int:
        """Queue one raw update as-is (its update_id kept); returns how many were queued."""
        result = await self._request("POST", "/emulator/updates", json_body={"update": update})
        return int(result["queued"])

    async def inject_updates(
        self, updates: list[Mapping[str, Any]], *, concurrent: bool = False
    ) -> int:
        """Queue raw updates; `concurrent` delivers them to a webhook in parallel."""
        result = await self._request(
            "POST",
            "/emulator/updates",
            json_body={"updates": [dict(u) for u in updates], "concurrent": concurrent},
        )
        return int(result["queued"])

    # --- looking inside ---------------------------------------------------------------------

    async def history(
        self, chat_id: int, *, after: int = 0, since: int | None = None, wait: float = 0.0
    ) -> ChatHistory:
        """A chat's history (see the user API docs for `after`, `since` and `wait`)."""
        query = _Query().add("after", after).add("since", since).add("wait", wait)
        body = await self._request("GET", f"/emulator/chats/{chat_id}/history", query=query)
        return ChatHistory.from_json(body)

    async def wait_until(
        self,
        chat_id: int,
        condition: Callable[[ChatHistory], bool],
        *,
        # The deadline is passed on to the server's long polls and named in the
        # TimeoutError, which a caller's asyncio.timeout could not do.
        timeout: float = 10.0,  # noqa: ASYNC109
        description: str | None = None,
    ) -> ChatHistory:
        """Wait until `condition(history)` holds; TimeoutError names what was awaited."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        history = await self.history(chat_id)
        while not condition(history):
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = "; ".join(m.describe() for m in history.messages) or "no messages"
                what = description or getattr(condition, "__name__", "the condition")
                raise TimeoutError(
                    f"waited {timeout}s in chat {chat_id} for {what}; chat has: {seen}"
                )
            # Wait for any change, then judge the whole chat again.
            await self.history(chat_id, since=history.revision, wait=remaining)
            history = await self.history(chat_id)
        return history

    async def wait_for_bot_message(
        self,
        chat_id: int,
        *,
        after: int = 0,
        predicate: Callable[[ChatMessage], bool] | None = None,
        # The deadline is passed on to the server's long polls and named in the
        # TimeoutError, which a caller's asyncio.timeout could not do.
        timeout: float = 10.0,  # noqa: ASYNC109
        description: str | None = None,
    ) -> ChatMessage:
        """The first bot message above `after` (not deleted) that satisfies `predicate`.

        Edits count: a message edited into shape while waiting matches. Raises a
        TimeoutError naming what it waited for and listing the bot messages it saw.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        revision: int | None = None
        latest: dict[int, ChatMessage] = {}
        while True:
            remaining = deadline - loop.time()
            history = await self.history(
                chat_id,
                after=after,
                since=revision,
                wait=max(remaining, 0) if revision is not None else 0,
            )
            for message in history.messages:
                latest[message.message_id] = message
            for message_id in sorted(latest):
                message = latest[message_id]
                if (
                    message.from_bot
                    and not message.deleted
                    and (predicate is None or predicate(message))
                ):
                    return message
            revision = history.revision
            if deadline - loop.time() <= 0:
                bot_seen = [m.describe() for _, m in sorted(latest.items()) if m.from_bot]
                raise TimeoutError(
                    f"waited {timeout}s for {_describe_predicate(predicate, description)} "
                    f"in chat {chat_id} after message {after}; bot messages seen: "
                    + ("; ".join(bot_seen) if bot_seen else "none")
                )

    async def calls(
        self, *, method: str | None = None, chat_id: int | None = None, since: int = 0
    ) -> list[CallLogEntry]:
        """The Bot API call log, optionally filtered."""
        query = _Query().add("method", method).add("chat_id", chat_id).add("since", since)
        body = await self._request("GET", "/emulator/calls", query=query)
        return [CallLogEntry.from_json(c) for c in body["calls"]]

    async def wait_for_call(
        self,
        method: str,
        *,
        since: int = 0,
        chat_id: int | None = None,
        predicate: Callable[[CallLogEntry], bool] | None = None,
        # The deadline is passed on to the server's long polls and named in the
        # TimeoutError, which a caller's asyncio.timeout could not do.
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> CallLogEntry:
        """The first logged call of `method` after `since` satisfying `predicate`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        cursor = since
        seen: list[str] = []
        while True:
            remaining = deadline - loop.time()
            query = (
                _Query()
                .add("method", method)
                .add("chat_id", chat_id)
                .add("since", cursor)
                .add("wait", max(remaining, 0))
            )
            body = await self._request("GET", "/emulator/calls", query=query)
            for raw in body["calls"]:
                entry = CallLogEntry.from_json(raw)
                if predicate is None or predicate(entry):
                    return entry
                seen.append(f"#{entry.seq} {entry.method} -> {entry.status}")
            cursor = max(cursor, int(body["last_seq"]))
            if deadline - loop.time() <= 0:
                raise TimeoutError(
                    f"waited {timeout}s for a {method} call"
                    + (f" to chat {chat_id}" if chat_id is not None else "")
                    + f"; saw: {', '.join(seen) or 'none'}"
                )

    async def clear_calls(self) -> None:
        """Empty the call log."""
        await self._request("DELETE", "/emulator/calls")

    async def download_file(self, file_id: str) -> bytes:
        """The bytes of any stored file (user or bot upload)."""
        async with self._http().get(f"{self.base_url}/emulator/files/{file_id}") as response:
            if response.status >= 400:
                raise EmulatorError(response.status, await response.text())
            return await response.read()

    async def bot_info(self) -> BotInfo:
        """The bot's identity and how it receives updates."""
        raw = await self._request("GET", "/emulator/bot")
        return BotInfo(
            id=raw.get("id"),
            username=str(raw["username"]),
            first_name=str(raw["first_name"]),
            connected=bool(raw["connected"]),
            mode=str(raw["mode"]),
            webhook_url=raw.get("webhook_url"),
            pending_update_count=int(raw["pending_update_count"]),
        )

    async def commands(
        self, chat_id: int, *, language_code: str | None = None
    ) -> list[dict[str, str]]:
        """The command menu `chat_id` sees, after Telegram's scope and language fallbacks."""
        query = _Query().add("chat_id", chat_id).add("language_code", language_code)
        body = await self._request("GET", "/emulator/commands", query=query)
        return list(body["commands"])

    # --- steering ---------------------------------------------------------------------------

    async def add_fault(self, rule: FaultRule) -> FaultRule:
        """Register a fault rule; returns it with its id."""
        body = await self._request("POST", "/emulator/faults", json_body=rule.to_json())
        return FaultRule.from_json(body["rules"][0])

    async def faults(self) -> list[FaultRule]:
        """The fault rules still active."""
        body = await self._request("GET", "/emulator/faults")
        return [FaultRule.from_json(r) for r in body["rules"]]

    async def clear_faults(self) -> None:
        """Drop every fault rule."""
        await self._request("DELETE", "/emulator/faults")

    async def set_rate_limits(self, limits: RateLimits | None) -> None:
        """Enforce these flood limits, or none with None."""
        body: dict[str, Any] = {"enabled": limits is not None}
        if limits is not None:
            body["limits"] = limits.to_json()
        await self._request("PUT", "/emulator/rate-limits", json_body=body)

    async def rate_limits(self) -> RateLimits | None:
        """The flood limits in force, None when off."""
        body = await self._request("GET", "/emulator/rate-limits")
        return RateLimits.from_json(body["limits"]) if body["enabled"] else None

    async def reset(self) -> None:
        """Forget every bot, chat, file, call, fault rule and flood window."""
        await self._request("POST", "/emulator/reset")
