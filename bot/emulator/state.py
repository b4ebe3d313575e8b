"""The emulator's in-memory world: bots, chats, messages, updates, calls.

Everything here is plain state mutated from the event loop; the only
synchronisation needed is waking long polls, which `Notifier` does.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Telegram's default when allowed_updates is empty or never given.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CALL_LOG_SIZE = 10_000


class Notifier:
    """Wakes every coroutine waiting for "something changed"."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake the current waiters; later waiters wait for the next change."""
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, seconds: float) -> bool:
        """Wait for the next change; False when `seconds` passed first."""
        if seconds <= 0:
            return False
        event = self._event
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True


@dataclass(slots=True)
class UserProfile:
    """A Telegram user as bots see them."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_api(self) -> dict[str, Any]:
        """The Bot API `User` object."""
        user: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                user[key] = value
        return user

    def update(self, raw: dict[str, Any]) -> None:
        """Overwrite the given profile fields (first_name, last_name, ...)."""
        for key in ("first_name", "last_name", "username", "language_code"):
            if key in raw:
                value = raw[key]
                if key == "first_name" and not value:
                    continue
                setattr(self, key, None if value in ("", None) else str(value))


@dataclass(slots=True)
class StoredMessage:
    """A message of a chat, as the Bot API object it currently is."""

    message_id: int
    from_bot: bool
    data: dict[str, Any]
    revision: int
    deleted: bool = False
    # Reply keyboards are not part of a Message object, but the tester sees them.
    reply_keyboard: dict[str, Any] | None = None
    file_id: str | None = None


@dataclass(slots=True)
class CallbackAnswer:
    """What the bot answered to a button press."""

    callback_query_id: str
    message_id: int | None
    data: str | None
    text: str | None
    show_alert: bool
    url: str | None
    revision: int
    date: int

    def to_json(self) -> dict[str, Any]:
        """The answer as the history endpoint shows it."""
        return {
            "callback_query_id": self.callback_query_id,
            "message_id": self.message_id,
            "data": self.data,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "revision": self.revision,
            "date": self.date,
        }


@dataclass(slots=True)
class PendingCallback:
    """A callback query waiting for answerCallbackQuery."""

    id: str
    chat_id: int
    message_id: int
    data: str | None
    user_id: int
    answer: CallbackAnswer | None = None


@dataclass(slots=True)
class ChatState:
    """One chat between the bot and a user (private) or a group."""

    id: int
    type: str
    title: str | None = None
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    revision: int = 0
    keyboard: dict[str, Any] | None = None
    callback_answers: list[CallbackAnswer] = field(default_factory=list)
    chat_action: tuple[str, float] | None = None
    chat_instance: str = field(default_factory=lambda: str(secrets.randbits(62)))
    changed: Notifier = field(default_factory=Notifier)

    def bump(self) -> int:
        """Advance the revision and wake history long polls; return the revision."""
        self.revision += 1
        self.changed.notify()
        return self.revision

    def allocate_message_id(self) -> int:
        """The next message id of this chat (bot and user messages share the counter)."""
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def live_message(self, message_id: int) -> StoredMessage | None:
        """The message if it exists and was not deleted."""
        stored = self.messages.get(message_id)
        return None if stored is None or stored.deleted else stored


@dataclass(slots=True)
class QueuedUpdate:
    """An update waiting to be fetched or delivered."""

    update_id: int
    payload: dict[str, Any]
    # Raw injected updates may reuse an id already confirmed; protecting them until
    # first delivered is what lets a test feed the bot the same update twice.
    protected: bool = False
    lane: str | None = None

    @property
    def kind(self) -> str:
        """The update's type: "message", "callback_query", ..."""
        return next((key for key in self.payload if key != "update_id"), "unknown")


class UpdateQueue:
    """Pending updates of one bot, shared by getUpdates and webhook delivery."""

    def __init__(self) -> None:
        self.entries: list[QueuedUpdate] = []
        self.allowed_updates: list[str] | None = None
        self.changed = Notifier()
        self._next_id = secrets.randbelow(800_000_000) + 100_000_000

    def allows(self, kind: str) -> bool:
        """Whether updates of this kind are currently wanted by the bot."""
        if not self.allowed_updates:
            return kind not in DEFAULT_EXCLUDED_UPDATES
        return kind in self.allowed_updates

    def push(self, payload: dict[str, Any]) -> QueuedUpdate | None:
        """Queue a new update, giving it the next update_id; None if filtered out."""
        entry = QueuedUpdate(self._next_id, {"update_id": self._next_id, **payload})
        if not self.allows(entry.kind):
            return None
        self._next_id += 1
        self.entries.append(entry)
        self.changed.notify()
        return entry

    def inject(self, update: dict[str, Any], *, lane: str | None = None) -> QueuedUpdate | None:
        """Queue a raw update as-is, keeping its update_id."""
        update_id = int(update["update_id"])
        entry = QueuedUpdate(update_id, dict(update), protected=True, lane=lane)
        if not self.allows(entry.kind):
            return None
        self._next_id = max(self._next_id, update_id + 1)
        self.entries.append(entry)
        self.changed.notify()
        return entry

    def confirm(self, offset: int) -> None:
        """Apply getUpdates' offset: forget confirmed updates (negative: keep the last N)."""
        if offset > 0:
            self.entries = [e for e in self.entries if e.update_id >= offset or e.protected]
        elif offset < 0:
            self.entries = self.entries[offset:]

    def take(self, limit: int) -> list[QueuedUpdate]:
        """The first `limit` pending updates; they stay queued until confirmed."""
        batch = self.entries[:limit]
        for entry in batch:
            entry.protected = False
        return batch

    def remove(self, entry: QueuedUpdate) -> None:
        """Forget one update (delivered to the webhook)."""
        if entry in self.entries:
            self.entries.remove(entry)

    def clear(self) -> None:
        """Drop every pending update."""
        self.entries.clear()


@dataclass(slots=True)
class WebhookConfig:
    """What setWebhook stored."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    ip_address: str = "127.0.0.1"
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class PollTicket:
    """One pending getUpdates; a newer one terminates it with a conflict."""

    conflict: str | None = None
    cancelled: bool = False


class BotWorld:
    """Everything one bot (one token) sees: its chats, updates and settings."""

    def __init__(self, bot_id: int | None, token: str | None, username: str) -> None:
        self.bot_id = bot_id
        self.token = token
        self.username = username
        self.chats: dict[int, ChatState] = {}
        self.blocked: set[int] = set()
        self.queue = UpdateQueue()
        self.webhook: WebhookConfig | None = None
        self.poll: PollTicket | None = None
        self.callbacks: dict[str, PendingCallback] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.texts: dict[tuple[str, str], str] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.closed = False

    @property
    def first_name(self) -> str:
        """A display name derived from the username ("citizenbot_local_bot" -> ...)."""
        base = self.username.removesuffix("_bot").removesuffix("bot").replace("_", " ").strip()
        return base.title() or "Bot"

    def bot_user(self) -> dict[str, Any]:
        """The bot as a Bot API `User` (its id is 0 until a token claims the world)."""
        return {
            "id": self.bot_id or 0,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def chat(self, chat_id: int) -> ChatState | None:
        """The chat if the bot knows it."""
        return self.chats.get(chat_id)

    def ensure_chat(self, chat_id: int, *, title: str | None = None) -> ChatState:
        """The chat, created on first contact (private for positive ids)."""
        chat = self.chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = ChatState(chat_id, "private")
            else:
                # Supergroup ids start at -100 followed by at least 10 digits.
                kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
                chat = ChatState(chat_id, kind, title=title or f"Group {-chat_id}")
            self.chats[chat_id] = chat
        elif title:
            chat.title = title
        return chat

    def wake_all(self) -> None:
        """Wake every long poll so that it re-checks (used on close and reset)."""
        self.queue.changed.notify()
        for chat in self.chats.values():
            chat.changed.notify()


@dataclass(slots=True)
class CallRecord:
    """One Bot API call as the call log keeps it."""

    seq: int
    time: float
    bot_id: int | None
    method: str
    params: dict[str, Any]
    status: int = 0
    ok: bool = False
    description: str | None = None
    message_id: int | None = None
    chat_id: int | None = None
    source: str = "http"
    finished: bool = False
    dropped: bool = False
    # getUpdates: the update_id of each update it returned, in order.
    update_ids: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as `GET /emulator/calls` shows it."""
        return {
            "seq": self.seq,
            "time": self.time,
            "bot_id": self.bot_id,
            "method": self.method,
            "params": self.params,
            "status": self.status,
            "ok": self.ok,
            "description": self.description,
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "source": self.source,
            "dropped": self.dropped,
            "update_ids": self.update_ids,
        }


class CallLog:
    """The most recent Bot API calls, oldest first."""

    def __init__(self, size: int = CALL_LOG_SIZE) -> None:
        self._records: deque[CallRecord] = deque(maxlen=size)
        self._seq = itertools.count(1)
        self.changed = Notifier()

    def start(
        self, *, bot_id: int | None, method: str, params: dict[str, Any], source: str
    ) -> CallRecord:
        """Open a record when a call arrives; `finish` fills in its outcome."""
        record = CallRecord(0, time.time(), bot_id, method, params, source=source)
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) or (isinstance(chat_id, str) and chat_id.lstrip("-").isdigit()):
            record.chat_id = int(chat_id)
        return record

    def finish(self, record: CallRecord) -> None:
        """Log a completed call and wake those waiting for calls.

        Records are numbered and kept in completion order, so that a long poll in
        progress never holds back the cursor of a tester reading the log.
        """
        record.finished = True
        record.seq = next(self._seq)
        self._records.append(record)
        self.changed.notify()

    def records(self) -> Iterator[CallRecord]:
        """Every kept record, oldest first."""
        return iter(self._records)

    def clear(self) -> None:
        """Forget every record (sequence numbers keep increasing)."""
        self._records.clear()
        self.changed.notify()
