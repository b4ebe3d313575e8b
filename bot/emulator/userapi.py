"""The user side: act as any Telegram user, look inside the emulator, steer it.

JSON over HTTP under `/emulator/`. Every endpoint accepts `?bot_id=<id>` to pick a
bot when several tokens are in use; without it the first bot (the one whose token
called the Bot API first) is meant. Errors answer 4xx with `{"error": "..."}`.

Acting as a user (chat ids: a user id for a private chat, a negative id for a group)

- `POST /emulator/chats/{chat_id}/messages` sends one message to the bot. JSON body
  with exactly one content field::

      {"text": "/start"}                                   bot_command entity added
      {"location": {"latitude": 48.85, "longitude": 2.35}}
      {"photo": {"data": "<base64>", "file_name": "pothole.jpg"}, "caption": "..."}
      {"document": {"data": "<base64>", "file_name": "a.pdf", "mime_type": "application/pdf"}}
      {"sticker": {"emoji": "👍"}}
      {"voice": {"duration": 3, "data": "<base64, optional>"}}
      {"contact": {"phone_number": "+33...", "first_name": "..."}}   defaults to the sender

  plus optional `"from": {"id": 5, "first_name": "...", "last_name": "...",
  "username": "...", "language_code": "fr"}` (required in groups; in a private chat
  the sender is the chat's user and the given fields update their profile),
  `"reply_to_message_id"` and, for groups, `"chat_title"`. The same fields work as
  multipart/form-data, with `photo`/`document` as file parts and objects as JSON
  strings. Answer: `{"message": <Message>, "update_id": <int or null>}`. A user who
  blocked the bot unblocks it by writing, as "Restart bot" does.
- `PATCH /emulator/chats/{chat_id}/messages/{message_id}` with `{"text": "..."}` or
  `{"caption": "..."}` edits a user message: an `edited_message` update.
- `POST /emulator/chats/{chat_id}/messages/{message_id}/press` with
  `{"data": "<callback_data>"}` or `{"text": "<button text>"}`, optional `"from"` and
  `"wait_answer": <seconds>`: a `callback_query` update. Answer:
  `{"callback_query_id", "update_id", "answer": <callback answer or null>}`. 400 when
  the message has no such callback button.
- `POST /emulator/chats/{user_id}/block` and `/unblock`: a `my_chat_member` update
  (status "kicked" / "member"); while blocked, sends to the user fail with 403.
- `GET|PUT /emulator/users/{user_id}`: a user's profile (first_name, last_name,
  username, language_code), remembered for later calls.
- `GET /emulator/personas`: `{"personas": [{"user_id", "first_name", "language_code",
  "label", "last_name", "username"}]}`.

Looking inside

- `GET /emulator/chats/{chat_id}/history?after=<message_id>&since=<revision>&wait=<s>`:
  `{"chat", "revision", "messages": [{"message_id", "from_bot", "revision",
  "deleted", "message": <Message>, "reply_keyboard", "file_url"}], "keyboard",
  "callback_answers", "chat_action", "blocked"}`. Messages are those with an id
  above `after`; with `since`, only those changed after that revision (edits and
  deletions included), and callback answers likewise. `wait` long-polls: it returns
  as soon as a message matches (or, with `since`, anything in the chat changed).
- `GET /emulator/chats`: every chat the bot knows.
- `GET /emulator/calls?method=&chat_id=&since=<seq>&wait=<s>`: the Bot API call log
  `{"calls": [{"seq", "time", "bot_id", "method", "params", "status", "ok",
  "description", "message_id", "chat_id", "source", "dropped", "update_ids"}],
  "last_seq"}`, in completion order (`source` is "http" or "webhook_reply"; file
  parameters appear as `{"file_name", "size"}`; `update_ids` lists what a getUpdates
  call returned, null for other methods); `DELETE` clears it.
- `GET /emulator/files/{file_id}`: a file's bytes (photos, documents, ...).
- `GET /emulator/bot`: the bot's id, username, mode ("polling", "webhook", "idle").
- `GET /emulator/commands?chat_id=&language_code=`: the command menu a user sees.

Steering

- `POST /emulator/updates` with `{"update": {...}}` or `{"updates": [...],
  "concurrent": true}`: queue raw updates as-is (their update_id kept, so the same
  update can be delivered twice); `concurrent` delivers them to a webhook in
  parallel instead of in chat order. Answer `{"queued": n}`.
- `GET|POST|DELETE /emulator/faults`, `DELETE /emulator/faults/{id}`: fault rules
  (see `FaultRule`); POST takes one rule object or `{"rules": [...]}`.
- `GET|PUT /emulator/rate-limits`: `{"enabled": bool, "limits": {...RateLimits}}`.
- `POST /emulator/reset`: forget every bot, chat, file, call, rule and window.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.botapi import command_scope_key
from bot.emulator.errors import BotApiError
from bot.emulator.markup import find_button
from bot.emulator.media import guess_mime_type
from bot.emulator.params import Params, read_params
from bot.emulator.state import BotWorld, ChatState, PendingCallback, StoredMessage, UserProfile
from bot.emulator.textparse import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, detect_entities
from bot.emulator.types import FaultRule, RateLimits

if TYPE_CHECKING:
    from bot.emulator.hub import Hub
    from bot.emulator.webhook import WebhookDispatcher

MAX_WAIT = 60.0
_CONTENT_KINDS = ("text", "location", "photo", "document", "sticker", "voice", "contact")


class UserApiError(Exception):
    """A tester's request that cannot be honoured."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


RouteHandler = Callable[["UserApi", web.Request], Awaitable[web.StreamResponse]]


def _endpoint(handler: RouteHandler) -> RouteHandler:
    """Turn UserApiError (and parameter errors) into `{"error": ...}` answers."""

    @functools.wraps(handler)
    async def wrapper(self: UserApi, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(self, request)
        except UserApiError as error:
            return web.json_response({"error": error.message}, status=error.status)
        except BotApiError as error:
            return web.json_response({"error": error.description}, status=400)
        except (TypeError, ValueError) as error:
            return web.json_response({"error": f"bad request: {error}"}, status=400)

    return wrapper


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise UserApiError(400, f"{name} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise UserApiError(400, f"{name} must be an integer") from None


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UserApiError(400, f"{name} must be a number") from None


def _wait_seconds(request: web.Request) -> float:
    return min(max(_float(request.query.get("wait", 0), "wait"), 0.0), MAX_WAIT)


def _blob(raw: dict[str, Any], name: str) -> bytes:
    encoded = raw.get("data", "")
    if not isinstance(encoded, str):
        raise UserApiError(400, f"{name}.data must be a base64 string")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UserApiError(400, f"{name}.data is not valid base64") from None


def history_entry(stored: StoredMessage) -> dict[str, Any]:
    """A message as the history endpoint shows it."""
    return {
        "message_id": stored.message_id,
        "from_bot": stored.from_bot,
        "revision": stored.revision,
        "deleted": stored.deleted,
        "message": stored.data,
        "reply_keyboard": stored.reply_keyboard,
        "file_url": f"/emulator/files/{stored.file_id}" if stored.file_id else None,
    }


class UserApi:
    """Handlers of the `/emulator/` routes."""

    def __init__(self, hub: Hub, webhooks: WebhookDispatcher) -> None:
        self.hub = hub
        self.webhooks = webhooks

    def add_routes(self, app: web.Application) -> None:
        """Register every `/emulator/` route on `app`."""
        routes = [
            ("GET", "/emulator/personas", self.personas),
            ("GET", "/emulator/bot", self.bot_info),
            ("GET", "/emulator/commands", self.commands),
            ("GET", "/emulator/users/{user_id}", self.get_user),
            ("PUT", "/emulator/users/{user_id}", self.put_user),
            ("GET", "/emulator/chats", self.chats),
            ("POST", "/emulator/chats/{chat_id}/messages", self.send_message),
            ("PATCH", "/emulator/chats/{chat_id}/messages/{message_id}", self.edit_message),
            ("POST", "/emulator/chats/{chat_id}/messages/{message_id}/press", self.press),
            ("POST", "/emulator/chats/{chat_id}/block", self.block),
            ("POST", "/emulator/chats/{chat_id}/unblock", self.unblock),
            ("GET", "/emulator/chats/{chat_id}/history", self.history),
            ("POST", "/emulator/updates", self.inject),
            ("GET", "/emulator/calls", self.calls),
            ("DELETE", "/emulator/calls", self.clear_calls),
            ("GET", "/emulator/faults", self.faults),
            ("POST", "/emulator/faults", self.add_faults),
            ("DELETE", "/emulator/faults", self.clear_faults),
            ("DELETE", "/emulator/faults/{rule_id}", self.delete_fault),
            ("GET", "/emulator/rate-limits", self.rate_limits),
            ("PUT", "/emulator/rate-limits", self.set_rate_limits),
            ("POST", "/emulator/reset", self.reset),
            ("GET", "/emulator/files/{file_id}", self.file),
        ]
        for http_method, path, handler in routes:
            app.router.add_route(http_method, path, handler)

    # --- helpers -------------------------------------------------------------------

    def _world(self, request: web.Request) -> BotWorld:
        raw = request.query.get("bot_id")
        return self.hub.world_for_user(None if raw in (None, "") else _int(raw, "bot_id"))

    @staticmethod
    def _chat_id(request: web.Request) -> int:
        chat_id = _int(request.match_info["chat_id"], "chat_id")
        if chat_id == 0:
            raise UserApiError(400, "chat_id must not be 0")
        return chat_id

    @staticmethod
    async def _body(request: web.Request) -> Params:
        params = await read_params(request)
        params.values.pop("bot_id", None)
        return params

    def _sender(self, chat_id: int, raw: Any) -> UserProfile:
        """The acting user: `from` if given, else the private chat's user."""
        if raw is not None and not isinstance(raw, dict):
            raise UserApiError(400, "from must be an object")
        if raw and "id" in raw:
            user_id = _int(raw["id"], "from.id")
        elif chat_id > 0:
            user_id = chat_id
        else:
            raise UserApiError(400, "a group message needs from.id")
        if chat_id > 0 and user_id != chat_id:
            raise UserApiError(400, "in a private chat the sender is the chat's user")
        if user_id <= 0:
            raise UserApiError(400, "user ids are positive")
        profile = self.hub.profile(user_id)
        if raw:
            profile.update(raw)
        return profile

    def _message(
        self, world: BotWorld, chat_id: int, message_id: str
    ) -> tuple[ChatState, StoredMessage]:
        chat = world.chat(chat_id)
        stored = chat.live_message(_int(message_id, "message_id")) if chat else None
        if chat is None or stored is None:
            raise UserApiError(404, f"no message {message_id} in chat {chat_id}")
        return chat, stored

    def _unblock_if_needed(self, world: BotWorld, chat: ChatState, user: UserProfile) -> None:
        if chat.type == "private" and chat.id in world.blocked:
            self._set_blocked(world, chat, user, blocked=False)

    def _set_blocked(
        self, world: BotWorld, chat: ChatState, user: UserProfile, *, blocked: bool
    ) -> int | None:
        if (chat.id in world.blocked) == blocked:
            return None
        member = {"user": world.bot_user(), "status": "member"}
        kicked = {"user": world.bot_user(), "status": "kicked", "until_date": 0}
        if blocked:
            world.blocked.add(chat.id)
        else:
            world.blocked.discard(chat.id)
        chat.bump()
        entry = self.hub.push_update(
            world,
            {
                "my_chat_member": {
                    "chat": self.hub.chat_object(chat),
                    "from": user.to_api(),
                    "date": int(time.time()),
                    "old_chat_member": member if blocked else kicked,
                    "new_chat_member": kicked if blocked else member,
                }
            },
        )
        return entry.update_id if entry else None

    # --- acting as a user ------------------------------------------------------------

    def _content(self, params: Params, sender: UserProfile) -> tuple[dict[str, Any], str | None]:
        """The message fields for exactly one kind of content, and its file_id."""
        given = [kind for kind in _CONTENT_KINDS if params.has(kind)]
        if len(given) != 1:
            raise UserApiError(400, f"give exactly one of {', '.join(_CONTENT_KINDS)}")
        kind = given[0]
        files = self.hub.files
        if kind == "text":
            text = (params.get_str("text") or "").strip()
            if not text or len(text) > MAX_TEXT_LENGTH:
                raise UserApiError(400, "text must be 1-4096 characters")
            content: dict[str, Any] = {"text": text}
            if entities := detect_entities(text):
                content["entities"] = entities
            return content, None
        if kind == "location":
            raw = params.get_json("location")
            if not isinstance(raw, dict):
                raise UserApiError(400, "location must be {latitude, longitude}")
            latitude = _float(raw.get("latitude"), "latitude")
            longitude = _float(raw.get("longitude"), "longitude")
            if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
                raise UserApiError(400, "latitude or longitude out of range")
            return {"location": {"latitude": latitude, "longitude": longitude}}, None
        if kind == "contact":
            raw = params.get_json("contact") or {}
            if not isinstance(raw, dict) or not raw.get("phone_number"):
                raise UserApiError(400, "contact needs a phone_number")
            contact = {
                "phone_number": str(raw["phone_number"]),
                "first_name": str(raw.get("first_name") or sender.first_name),
                "user_id": _int(raw.get("user_id", sender.id), "contact.user_id"),
            }
            if last_name := raw.get("last_name", sender.last_name):
                contact["last_name"] = str(last_name)
            return {"contact": contact}, None
        data, file_name, mime_type = self._file_input(params, kind)
        caption = (params.get_str("caption") or "").strip()
        if len(caption) > MAX_CAPTION_LENGTH:
            raise UserApiError(400, "caption must be at most 1024 characters")
        content = {}
        if kind == "photo":
            sizes = files.add_photo(data)
            content["photo"] = sizes
            file_id = sizes[-1]["file_id"]
        else:
            raw_spec = params.get_json(kind)
            spec = raw_spec if isinstance(raw_spec, dict) else {}
            extra: dict[str, Any] = {}
            if kind == "voice":
                extra["duration"] = _int(spec.get("duration", 1), "voice.duration")
                mime_type = mime_type or "audio/ogg"
            elif kind == "sticker":
                extra = {
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "emoji": str(spec.get("emoji") or "👍"),
                }
                mime_type = None
            stored_file = files.add_file(
                kind,
                data,
                file_name=file_name if kind == "document" else None,
                mime_type=mime_type,
                extra=extra,
            )
            content[kind] = stored_file.media_object()
            file_id = stored_file.file_id
        if caption and kind in ("photo", "document", "voice"):
            content["caption"] = caption
            if entities := detect_entities(caption):
                content["caption_entities"] = entities
        return content, file_id

    @staticmethod
    def _file_input(params: Params, kind: str) -> tuple[bytes, str | None, str | None]:
        upload = params.uploads.get(kind)
        if upload is not None:
            return (
                upload.data,
                upload.file_name,
                guess_mime_type(upload.file_name, upload.content_type),
            )
        raw = params.get_json(kind)
        if raw is None or raw == "":
            raw = {}
        if not isinstance(raw, dict):
            raise UserApiError(400, f"{kind} must be an object or a file part")
        if kind in ("photo", "document") and not raw.get("data"):
            raise UserApiError(400, f"{kind}.data (base64) is required")
        data = _blob(raw, kind) if raw.get("data") else b""
        file_name = raw.get("file_name")
        if kind == "document" and not file_name:
            file_name = "document.bin"
        mime_type = raw.get("mime_type")
        return (
            data,
            str(file_name) if file_name else None,
            guess_mime_type(str(file_name) if file_name else None, mime_type),
        )

    @_endpoint
    async def send_message(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/chats/{chat_id}/messages`."""
        chat_id = self._chat_id(request)
        params = await self._body(request)
        world = self._world(request)
        sender = self._sender(chat_id, params.get_json("from"))
        content, file_id = self._content(params, sender)
        chat = world.ensure_chat(chat_id, title=params.get_str("chat_title"))
        self._unblock_if_needed(world, chat, sender)
        reply_id = params.get_int("reply_to_message_id")
        if reply_id is not None:
            target = chat.live_message(reply_id)
            if target is None:
                raise UserApiError(400, f"no message {reply_id} to reply to")
            replied = dict(target.data)
            replied.pop("reply_to_message", None)
            content["reply_to_message"] = replied
        stored = self.hub.add_message(
            world, chat, sender=sender.to_api(), content=content, file_id=file_id
        )
        if chat.keyboard is not None and chat.keyboard.get("one_time_keyboard"):
            chat.keyboard["collapsed"] = True
        entry = self.hub.push_update(world, {"message": stored.data})
        return web.json_response(
            {"message": stored.data, "update_id": entry.update_id if entry else None}
        )

    @_endpoint
    async def edit_message(self, request: web.Request) -> web.StreamResponse:
        """`PATCH /emulator/chats/{chat_id}/messages/{message_id}`."""
        chat_id = self._chat_id(request)
        params = await self._body(request)
        world = self._world(request)
        chat, stored = self._message(world, chat_id, request.match_info["message_id"])
        if stored.from_bot:
            raise UserApiError(400, "users can only edit their own messages")
        field = "text" if "text" in stored.data else "caption"
        value = (params.get_str(field) or "").strip()
        if not value:
            raise UserApiError(400, f"give the new {field}")
        entities_key = "entities" if field == "text" else "caption_entities"
        data = {k: v for k, v in stored.data.items() if k not in (field, entities_key)}
        data[field] = value
        if entities := detect_entities(value):
            data[entities_key] = entities
        data["edit_date"] = int(time.time())
        stored.data = data
        stored.revision = chat.bump()
        entry = self.hub.push_update(world, {"edited_message": data})
        return web.json_response({"message": data, "update_id": entry.update_id if entry else None})

    @_endpoint
    async def press(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/chats/{chat_id}/messages/{message_id}/press`."""
        chat_id = self._chat_id(request)
        params = await self._body(request)
        world = self._world(request)
        chat, stored = self._message(world, chat_id, request.match_info["message_id"])
        data, text = params.get_str("data"), params.get_str("text")
        if data is None and text is None:
            raise UserApiError(400, "give the button's data or text")
        button = find_button(stored.data.get("reply_markup"), data=data, text=text)
        wanted = f"callback_data {data!r}" if data is not None else f"text {text!r}"
        if button is None:
            raise UserApiError(400, f"message {stored.message_id} has no button with {wanted}")
        if "callback_data" not in button:
            raise UserApiError(400, f"the button with {wanted} is not a callback button")
        sender = self._sender(chat_id, params.get_json("from"))
        query_id = str(secrets.randbits(63))
        pending = PendingCallback(
            query_id, chat.id, stored.message_id, button["callback_data"], sender.id
        )
        world.callbacks[query_id] = pending
        entry = self.hub.push_update(
            world,
            {
                "callback_query": {
                    "id": query_id,
                    "from": sender.to_api(),
                    "message": stored.data,
                    "chat_instance": chat.chat_instance,
                    "data": button["callback_data"],
                }
            },
        )
        wait = min(max(params.get_float("wait_answer") or 0.0, 0.0), MAX_WAIT)
        deadline = self.hub.clock() + wait
        while pending.answer is None and not (world.closed or self.hub.closing):
            remaining = deadline - self.hub.clock()
            if remaining <= 0 or not await chat.changed.wait(remaining):
                break
        return web.json_response(
            {
                "callback_query_id": query_id,
                "update_id": entry.update_id if entry else None,
                "answer": pending.answer.to_json() if pending.answer else None,
            }
        )

    async def _block_route(self, request: web.Request, *, blocked: bool) -> web.StreamResponse:
        chat_id = self._chat_id(request)
        if chat_id < 0:
            raise UserApiError(400, "only a private chat's user can block the bot")
        params = await self._body(request)
        world = self._world(request)
        sender = self._sender(chat_id, params.get_json("from"))
        chat = world.ensure_chat(chat_id)
        update_id = self._set_blocked(world, chat, sender, blocked=blocked)
        return web.json_response({"blocked": blocked, "update_id": update_id})

    @_endpoint
    async def block(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/chats/{user_id}/block`."""
        return await self._block_route(request, blocked=True)

    @_endpoint
    async def unblock(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/chats/{user_id}/unblock`."""
        return await self._block_route(request, blocked=False)

    @_endpoint
    async def get_user(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/users/{user_id}`."""
        user_id = _int(request.match_info["user_id"], "user_id")
        return web.json_response(self.hub.profile(user_id).to_api())

    @_endpoint
    async def put_user(self, request: web.Request) -> web.StreamResponse:
        """`PUT /emulator/users/{user_id}`: set profile fields."""
        user_id = _int(request.match_info["user_id"], "user_id")
        if user_id <= 0:
            raise UserApiError(400, "user ids are positive")
        params = await self._body(request)
        profile = self.hub.profile(user_id)
        profile.update(params.values)
        return web.json_response(profile.to_api())

    @_endpoint
    async def personas(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/personas`."""
        return web.json_response({"personas": [p.to_json() for p in self.hub.personas]})

    # --- looking inside ----------------------------------------------------------------

    @_endpoint
    async def history(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/chats/{chat_id}/history`: long-pollable chat history."""
        chat_id = self._chat_id(request)
        world = self._world(request)
        after = _int(request.query.get("after", 0), "after")
        raw_since = request.query.get("since")
        since = None if raw_since in (None, "") else _int(raw_since, "since")
        deadline = self.hub.clock() + _wait_seconds(request)
        while True:
            chat = world.chat(chat_id)
            body = self._history_body(world, chat_id, chat, after, since)
            remaining = deadline - self.hub.clock()
            stop = world.closed or self.hub.closing
            if self._history_ready(body, chat, since) or remaining <= 0 or stop:
                return web.json_response(body)
            if chat is None:
                # The chat appears with its first message; poll the world for it.
                await world.queue.changed.wait(min(remaining, 0.2))
            else:
                await chat.changed.wait(remaining)

    @staticmethod
    def _history_ready(body: dict[str, Any], chat: ChatState | None, since: int | None) -> bool:
        if since is None:
            return bool(body["messages"])
        return chat is not None and chat.revision > since

    def _history_body(
        self, world: BotWorld, chat_id: int, chat: ChatState | None, after: int, since: int | None
    ) -> dict[str, Any]:
        if chat is None:
            return {
                "chat": None,
                "revision": 0,
                "messages": [],
                "keyboard": None,
                "callback_answers": [],
                "chat_action": None,
                "blocked": chat_id in world.blocked,
            }
        messages = [
            history_entry(stored)
            for _, stored in sorted(chat.messages.items())
            if stored.message_id > after and (since is None or stored.revision > since)
        ]
        answers = [
            answer.to_json()
            for answer in chat.callback_answers
            if since is None or answer.revision > since
        ]
        action = None
        if chat.chat_action is not None and chat.chat_action[1] > time.time():
            action = {"action": chat.chat_action[0], "until": chat.chat_action[1]}
        return {
            "chat": self.hub.chat_object(chat),
            "revision": chat.revision,
            "messages": messages,
            "keyboard": chat.keyboard,
            "callback_answers": answers,
            "chat_action": action,
            "blocked": chat.id in world.blocked,
        }

    @_endpoint
    async def chats(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/chats`."""
        world = self._world(request)
        return web.json_response(
            {
                "chats": [
                    {
                        "chat": self.hub.chat_object(chat),
                        "revision": chat.revision,
                        "message_count": len(chat.messages),
                        "blocked": chat.id in world.blocked,
                    }
                    for chat in world.chats.values()
                ]
            }
        )

    @_endpoint
    async def calls(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/calls`: the call log, long-pollable with `since` and `wait`."""
        query = request.query
        method = (query.get("method") or "").lower()
        chat_id = _int(query["chat_id"], "chat_id") if query.get("chat_id") else None
        since = _int(query.get("since", 0), "since")
        deadline = self.hub.clock() + _wait_seconds(request)
        while True:
            matching = [
                record.to_json()
                for record in self.hub.calls.records()
                if record.seq > since
                and (not method or record.method.lower() == method)
                and (chat_id is None or record.chat_id == chat_id)
            ]
            remaining = deadline - self.hub.clock()
            if matching or remaining <= 0 or self.hub.closing:
                last = max((r.seq for r in self.hub.calls.records()), default=since)
                return web.json_response({"calls": matching, "last_seq": last})
            await self.hub.calls.changed.wait(remaining)

    @_endpoint
    async def clear_calls(self, request: web.Request) -> web.StreamResponse:
        """`DELETE /emulator/calls`."""
        self.hub.calls.clear()
        return web.json_response({"cleared": True})

    @_endpoint
    async def file(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/files/{file_id}`: the bytes, for the playground and tests."""
        stored = self.hub.files.get(request.match_info["file_id"])
        if stored is None:
            raise UserApiError(404, "no such file")
        content_type = stored.mime_type or (
            "image/png" if stored.data.startswith(b"\x89PNG") else "image/jpeg"
        )
        if stored.kind != "photo" and not stored.mime_type:
            content_type = "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)

    @_endpoint
    async def bot_info(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/bot`."""
        world = self._world(request)
        mode = "webhook" if world.webhook else ("polling" if world.poll else "idle")
        return web.json_response(
            {
                "id": world.bot_id,
                "username": world.username,
                "first_name": world.first_name,
                "connected": world.token is not None,
                "mode": mode,
                "webhook_url": world.webhook.url if world.webhook else None,
                "pending_update_count": len(world.queue.entries),
            }
        )

    @_endpoint
    async def commands(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/commands?chat_id=&language_code=`: the menu a user would see."""
        world = self._world(request)
        chat_id = _int(request.query.get("chat_id", 0), "chat_id")
        language = request.query.get("language_code", "")
        scopes: list[dict[str, Any]] = []
        if chat_id:
            scopes.append({"type": "chat", "chat_id": chat_id})
        scopes.append({"type": "all_group_chats" if chat_id < 0 else "all_private_chats"})
        scopes.append({"type": "default"})
        for scope in scopes:
            key = command_scope_key(scope)
            for lang in (language, ""):
                if (key, lang) in world.commands:
                    return web.json_response({"commands": world.commands[(key, lang)]})
        return web.json_response({"commands": []})

    # --- steering ------------------------------------------------------------------------

    @_endpoint
    async def inject(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/updates`: queue raw updates as-is."""
        params = await self._body(request)
        world = self._world(request)
        raw = params.get_json("updates")
        if raw is None:
            single = params.get_json("update")
            raw = [single] if single is not None else None
        if not isinstance(raw, list) or not raw:
            raise UserApiError(400, "give an update object or a non-empty updates array")
        for update in raw:
            if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
                raise UserApiError(400, "every update needs an integer update_id")
            if len(update) != 2:
                raise UserApiError(400, "an update has its update_id and exactly one other field")
        concurrent = params.get_bool("concurrent")
        queued = 0
        for index, update in enumerate(raw):
            lane = f"injected:{secrets.token_hex(4)}:{index}" if concurrent else None
            if self.hub.inject_update(world, update, lane=lane) is not None:
                queued += 1
        return web.json_response({"queued": queued})

    @_endpoint
    async def faults(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/faults`."""
        return web.json_response({"rules": [rule.to_json() for rule in self.hub.faults.rules()]})

    @_endpoint
    async def add_faults(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/faults`: one rule object, or `{"rules": [...]}`."""
        params = await self._body(request)
        raw_rules = params.get_json("rules")
        rules_raw = raw_rules if isinstance(raw_rules, list) else [params.values]
        added = []
        for raw in rules_raw:
            if not isinstance(raw, dict):
                raise UserApiError(400, "a fault rule is an object")
            try:
                rule = FaultRule.from_json(raw)
            except TypeError as error:
                raise UserApiError(400, f"bad fault rule: {error}") from None
            if rule.times < 1 or rule.delay < 0:
                raise UserApiError(400, "times must be at least 1 and delay not negative")
            if rule.error_code is not None and not 400 <= rule.error_code <= 599:
                raise UserApiError(400, "error_code must be an HTTP error status")
            added.append(self.hub.faults.add(rule).to_json())
        return web.json_response({"rules": added})

    @_endpoint
    async def clear_faults(self, request: web.Request) -> web.StreamResponse:
        """`DELETE /emulator/faults`."""
        self.hub.faults.clear()
        return web.json_response({"rules": []})

    @_endpoint
    async def delete_fault(self, request: web.Request) -> web.StreamResponse:
        """`DELETE /emulator/faults/{rule_id}`."""
        if not self.hub.faults.remove(_int(request.match_info["rule_id"], "rule_id")):
            raise UserApiError(404, "no such fault rule")
        return web.json_response({"rules": [rule.to_json() for rule in self.hub.faults.rules()]})

    def _limits_body(self) -> dict[str, Any]:
        limits = self.hub.limiter.limits
        return {
            "enabled": limits is not None,
            "limits": (limits or RateLimits()).to_json(),
        }

    @_endpoint
    async def rate_limits(self, request: web.Request) -> web.StreamResponse:
        """`GET /emulator/rate-limits`."""
        return web.json_response(self._limits_body())

    @_endpoint
    async def set_rate_limits(self, request: web.Request) -> web.StreamResponse:
        """`PUT /emulator/rate-limits` with `{"enabled": bool, "limits": {...}}`."""
        params = await self._body(request)
        enabled = params.get_bool("enabled", default=True)
        raw = params.get_json("limits")
        if raw is not None and not isinstance(raw, dict):
            raise UserApiError(400, "limits must be an object")
        try:
            limits = RateLimits.from_json(raw or {})
        except TypeError as error:
            raise UserApiError(400, f"bad limits: {error}") from None
        self.hub.limiter.configure(limits if enabled else None)
        return web.json_response(self._limits_body())

    @_endpoint
    async def reset(self, request: web.Request) -> web.StreamResponse:
        """`POST /emulator/reset`."""
        for world in self.hub.reset():
            self.webhooks.stop(world)
        return web.json_response({"reset": True})
