"""Shared state of one emulator and the operations both of its APIs need."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from bot.emulator.errors import unauthorized
from bot.emulator.limits import FaultInjector, RateLimiter
from bot.emulator.media import FileStore
from bot.emulator.state import (
    BotWorld,
    CallLog,
    ChatState,
    Notifier,
    PendingCallback,
    QueuedUpdate,
    StoredMessage,
    UserProfile,
)
from bot.emulator.types import Persona, RateLimits

TOKEN_RE = re.compile(r"^(\d+):[A-Za-z0-9_-]{10,}$")


class Hub:
    """Owns every world, user, file, call record, fault rule and rate window."""

    def __init__(
        self,
        *,
        bot_username: str,
        personas: Iterable[Persona],
        rate_limits: RateLimits | None,
        clock: Callable[[], float] = time.monotonic,
        personas_started: bool = False,
    ) -> None:
        self.bot_username = bot_username
        self.personas = list(personas)
        self.personas_started = personas_started
        self.initial_rate_limits = rate_limits
        self.clock = clock
        self.files = FileStore()
        self.calls = CallLog()
        self.faults = FaultInjector()
        self.limiter = RateLimiter(rate_limits, clock)
        self.users: dict[int, UserProfile] = {}
        self.queue_listeners: list[Callable[[BotWorld], None]] = []
        self.closing = False
        self.closed = Notifier()
        self._worlds: dict[int, BotWorld] = {}
        self._unclaimed: BotWorld | None = None
        self._seed_users()

    def _seed_users(self) -> None:
        for persona in self.personas:
            self.users[persona.user_id] = UserProfile(
                persona.user_id,
                persona.first_name,
                persona.last_name,
                persona.username,
                persona.language_code,
            )

    # --- worlds ------------------------------------------------------------------

    def _new_world(self, bot_id: int | None) -> BotWorld:
        username = self.bot_username if bot_id is None else self._username_for(bot_id)
        world = BotWorld(bot_id, None, username)
        if self.personas_started:
            # Each persona has started the bot already: it may write to them first.
            for persona in self.personas:
                world.ensure_chat(persona.user_id)
        return world

    def _username_for(self, bot_id: int) -> str:
        if not self._worlds:
            return self.bot_username
        return f"bot{bot_id}_bot"

    def world_for_token(self, token: str) -> BotWorld:
        """The world of the bot that owns `token`, created on first use.

        Raises a 401 for a malformed token, or for a second secret presented for
        the same bot id (Telegram's answer to a revoked token).
        """
        match = TOKEN_RE.match(token)
        if match is None:
            raise unauthorized()
        bot_id = int(match.group(1))
        world = self._worlds.get(bot_id)
        if world is None:
            if self._unclaimed is not None:
                # A tester acted before any bot connected; the first bot adopts that world.
                world, self._unclaimed = self._unclaimed, None
                world.bot_id = bot_id
            else:
                world = self._new_world(bot_id)
            self._worlds[bot_id] = world
        if world.token is None:
            world.token = token
        elif world.token != token:
            raise unauthorized()
        return world

    def world_for_user(self, bot_id: int | None = None) -> BotWorld:
        """The world a tester acts in: the given bot's, else the first bot's."""
        if bot_id is not None:
            world = self._worlds.get(bot_id)
            if world is None:
                world = self._new_world(bot_id)
                self._worlds[bot_id] = world
            return world
        if self._worlds:
            return next(iter(self._worlds.values()))
        if self._unclaimed is None:
            self._unclaimed = self._new_world(None)
        return self._unclaimed

    def worlds(self) -> list[BotWorld]:
        """Every world, the unclaimed one included."""
        worlds = list(self._worlds.values())
        if self._unclaimed is not None:
            worlds.append(self._unclaimed)
        return worlds

    def reset(self) -> list[BotWorld]:
        """Forget everything; return the old worlds so their tasks can be stopped."""
        old = self.worlds()
        for world in old:
            world.closed = True
            world.wake_all()
        self._worlds.clear()
        self._unclaimed = None
        self.files.clear()
        self.calls.clear()
        self.faults.clear()
        self.limiter = RateLimiter(self.initial_rate_limits, self.clock)
        self.users.clear()
        self._seed_users()
        return old

    # --- users and chats ---------------------------------------------------------

    def profile(self, user_id: int) -> UserProfile:
        """The user's profile, created with a placeholder name on first sight."""
        profile = self.users.get(user_id)
        if profile is None:
            profile = UserProfile(user_id, f"User {user_id}", language_code="en")
            self.users[user_id] = profile
        return profile

    def chat_object(self, chat: ChatState) -> dict[str, Any]:
        """The Bot API `Chat` object for this chat."""
        if chat.type == "private":
            user = self.profile(chat.id)
            obj: dict[str, Any] = {"id": chat.id, "first_name": user.first_name}
            if user.last_name:
                obj["last_name"] = user.last_name
            if user.username:
                obj["username"] = user.username
            obj["type"] = "private"
            return obj
        return {"id": chat.id, "title": chat.title, "type": chat.type}

    def add_message(
        self,
        world: BotWorld,
        chat: ChatState,
        *,
        sender: dict[str, Any] | None,
        content: dict[str, Any],
        reply_keyboard: dict[str, Any] | None = None,
        file_id: str | None = None,
    ) -> StoredMessage:
        """Append a message to the chat; `sender=None` means the bot sent it."""
        from_bot = sender is None
        message_id = chat.allocate_message_id()
        data: dict[str, Any] = {
            "message_id": message_id,
            "from": world.bot_user() if from_bot else sender,
            "chat": self.chat_object(chat),
            "date": int(time.time()),
            **content,
        }
        stored = StoredMessage(
            message_id,
            from_bot,
            data,
            revision=0,
            reply_keyboard=reply_keyboard,
            file_id=file_id,
        )
        chat.messages[message_id] = stored
        stored.revision = chat.bump()
        return stored

    # --- updates -----------------------------------------------------------------

    def _queue_changed(self, world: BotWorld) -> None:
        for listener in self.queue_listeners:
            listener(world)

    def push_update(self, world: BotWorld, payload: dict[str, Any]) -> QueuedUpdate | None:
        """Queue an update for the bot (None when its allowed_updates filter it out)."""
        entry = world.queue.push(payload)
        if entry is not None:
            self._queue_changed(world)
        return entry

    def inject_update(
        self, world: BotWorld, update: dict[str, Any], *, lane: str | None = None
    ) -> QueuedUpdate | None:
        """Queue a raw update keeping its update_id; learn its chat and sender."""
        self._learn_from_update(world, update)
        entry = world.queue.inject(update, lane=lane)
        if entry is not None:
            self._queue_changed(world)
        return entry

    @staticmethod
    def _learn_callback(world: BotWorld, body: dict[str, Any]) -> None:
        """Let the bot answer an injected callback query (once, as Telegram allows)."""
        query_id, sender = body.get("id"), body.get("from")
        if not isinstance(query_id, str) or query_id in world.callbacks:
            return
        raw_message = body.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        raw_chat = message.get("chat")
        chat: dict[str, Any] = raw_chat if isinstance(raw_chat, dict) else {}
        world.callbacks[query_id] = PendingCallback(
            query_id,
            int(chat.get("id", 0)),
            int(message.get("message_id", 0)),
            body.get("data"),
            int(sender.get("id", 0)) if isinstance(sender, dict) else 0,
        )

    def _learn_from_update(self, world: BotWorld, update: dict[str, Any]) -> None:
        """Make the chat and user of a raw update known, so the bot can answer them."""
        for kind, body in update.items():
            if not isinstance(body, dict):
                continue
            message = body.get("message") if kind == "callback_query" else body
            sender = body.get("from")
            if (
                isinstance(sender, dict)
                and isinstance(sender.get("id"), int)
                and sender["id"] not in self.users
            ):
                self.profile(sender["id"]).update(sender)
            if kind == "callback_query":
                self._learn_callback(world, body)
            if not isinstance(message, dict):
                continue
            chat_raw = message.get("chat")
            if not isinstance(chat_raw, dict) or not isinstance(chat_raw.get("id"), int):
                continue
            chat = world.ensure_chat(chat_raw["id"], title=chat_raw.get("title"))
            message_id = message.get("message_id")
            if (
                kind == "message"
                and isinstance(message_id, int)
                and message_id not in chat.messages
            ):
                chat.messages[message_id] = StoredMessage(
                    message_id, False, dict(message), revision=0
                )
                chat.next_message_id = max(chat.next_message_id, message_id + 1)
                chat.messages[message_id].revision = chat.bump()
