"""The references the dialog benchmark compares citizenbot with (not part of the product).

* ``build_baseline`` — the report flow written the way a typical aiogram bot is:
  hand-coded handlers on aiogram's ``StatesGroup`` with ``MemoryStorage`` (state is
  lost on restart), inline and reply keyboards, one INSERT into a reports table at
  the end. It sends the same messages as citizenbot does for the same answers
  (one call more or less would skew the comparison), with the texts hard-coded.
  Given aiogram's ``RedisStorage`` instead (``redis_fsm``), it is the same bot as
  typically deployed when its dialogs must survive a restart.
* ``build_echo`` — a bare echo handler: the framework's floor.

Both are fed straight to ``Dispatcher.feed_update``: there is no inbox to store in.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiogram import Dispatcher, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CATEGORIES = (
    ("street_lighting", "💡 Street lighting"),
    ("potholes", "🕳️ Roads and potholes"),
    ("waste_collection", "🗑️ Waste collection"),
    ("graffiti", "🎨 Graffiti"),
    ("parks", "🌳 Parks and trees"),
    ("water", "💧 Water and drains"),
    ("noise", "🔊 Noise"),
    ("other", "❓ Something else"),
)
LABELS = dict(CATEGORIES)
SKIP, BACK, CANCEL = "Skip ➡️", "⬅️ Back", "✖️ Cancel"
MENU_REPORT = "📣 Report an issue"

CREATE_TABLE = """
CREATE TABLE reports (
    id {serial} PRIMARY KEY,
    telegram_id BIGINT NOT NULL,
    category VARCHAR(64) NOT NULL,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    description TEXT NOT NULL,
    anonymous BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""
INSERT_REPORT = text(
    "INSERT INTO reports (telegram_id, category, latitude, longitude, description, anonymous) "
    "VALUES (:telegram_id, :category, :latitude, :longitude, :description, :anonymous) "
    "RETURNING id"
)


class ReportForm(StatesGroup):
    """The report flow's questions, one state each."""

    category = State()
    location = State()
    photo = State()
    description = State()
    anonymous = State()
    confirm = State()


def _inline(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data) for label, data in row]
            for row in rows
        ]
    )


def _categories_keyboard() -> InlineKeyboardMarkup:
    buttons = [(label, f"cat:{code}") for code, label in CATEGORIES]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return _inline([*rows, [(CANCEL, "cancel")]])


LOCATION_KEYBOARD = ReplyKeyboardMarkup(
    keyboard=[
        [KeyboardButton(text="📍 Send my location", request_location=True)],
        [KeyboardButton(text=SKIP)],
        [KeyboardButton(text=BACK), KeyboardButton(text=CANCEL)],
    ],
    resize_keyboard=True,
)
PHOTO_KEYBOARD = ReplyKeyboardMarkup(
    keyboard=[
        [KeyboardButton(text=SKIP)],
        [KeyboardButton(text=BACK), KeyboardButton(text=CANCEL)],
    ],
    resize_keyboard=True,
)
MAIN_MENU = ReplyKeyboardMarkup(
    keyboard=[
        [KeyboardButton(text=MENU_REPORT)],
        [KeyboardButton(text="🤝 Volunteer")],
        [KeyboardButton(text="⭐ Rate a service")],
    ],
    resize_keyboard=True,
)


def _summary(data: dict[str, Any]) -> str:
    place = (
        f"📍 pin ({data['latitude']:.5f}, {data['longitude']:.5f})"
        if data.get("latitude") is not None
        else "—"
    )
    return (
        "<b>Please check your report before sending it.</b>\n\n"
        f"<b>Category:</b> {html.escape(LABELS[data['category']])}\n"
        f"<b>Place:</b> {place}\n"
        "<b>Photos:</b> —\n"
        f"<b>Description:</b> {html.escape(data['description'])}\n"
        f"<b>Anonymous:</b> {'Yes' if data['anonymous'] else 'No'}"
    )


class ReportStore:
    """The baseline's only persistence: one row per submitted report."""

    def __init__(self, database_url: str) -> None:
        self.is_sqlite = database_url.startswith("sqlite")
        self.engine: AsyncEngine = create_async_engine(database_url)
        if self.is_sqlite:
            # The same durability settings as citizenbot's SQLite (WAL, synchronous=
            # NORMAL), so the comparison is about design, not fsync policy.
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    async def create_table(self) -> None:
        """Create the reports table in an empty database."""
        serial = "INTEGER" if self.is_sqlite else "BIGSERIAL"
        async with self.engine.begin() as conn:
            await conn.execute(text(CREATE_TABLE.format(serial=serial)))

    async def add(self, **values: Any) -> int:
        """Insert one report; returns its id."""
        async with self.engine.begin() as conn:
            return int((await conn.execute(INSERT_REPORT, values)).scalar_one())

    async def count(self) -> int:
        """How many reports are stored."""
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM reports"))).scalar_one())

    async def dispose(self) -> None:
        """Close the pool."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def build_report_router() -> Router:
    """The report flow as hand-written FSM handlers."""
    router = Router(name="report")

    @router.message(Command("report"))
    @router.message(F.text == MENU_REPORT)
    async def start(message: Message, state: FSMContext) -> None:
        await state.clear()
        await state.set_state(ReportForm.category)
        await message.answer(
            "<b>What would you like to report?</b>\nChoose the closest match.",
            reply_markup=_categories_keyboard(),
        )

    @router.callback_query(F.data == "cancel")
    @router.message(F.text == CANCEL)
    async def cancel(event: Message | CallbackQuery, state: FSMContext) -> None:
        await state.clear()
        message = event.message if isinstance(event, CallbackQuery) else event
        if isinstance(event, CallbackQuery):
            await event.answer()
        if isinstance(message, Message):
            await message.answer("Cancelled. Nothing was sent.", reply_markup=MAIN_MENU)

    @router.callback_query(ReportForm.category, F.data.startswith("cat:"))
    async def category(query: CallbackQuery, state: FSMContext) -> None:
        code = (query.data or "").removeprefix("cat:")
        await query.answer()
        if code not in LABELS or not isinstance(query.message, Message):
            return
        await state.update_data(category=code)
        await state.set_state(ReportForm.location)
        await query.message.answer(
            "<b>Where is it?</b>\nA pin helps our team find it quickly.\n\n"
            "Tap “📍 Send my location” below, or type the address.",
            reply_markup=LOCATION_KEYBOARD,
        )

    @router.message(ReportForm.location, F.location)
    async def location(message: Message, state: FSMContext) -> None:
        assert message.location is not None
        await state.update_data(
            latitude=message.location.latitude, longitude=message.location.longitude
        )
        await state.set_state(ReportForm.photo)
        await message.answer("📍 Thanks, got the location.")
        await message.answer(
            "<b>Can you add a photo?</b>\nIt helps us understand the problem. Please avoid "
            "showing faces or number plates.\n\nYou can send up to 3, one after the other.",
            reply_markup=PHOTO_KEYBOARD,
        )

    @router.message(ReportForm.photo, F.text == SKIP)
    async def skip_photo(message: Message, state: FSMContext) -> None:
        await state.set_state(ReportForm.description)
        await message.answer("OK.", reply_markup=ReplyKeyboardRemove())
        await message.answer(
            "<b>Please describe the problem.</b>\nWhat is wrong, and since when? "
            "Every detail helps.",
            reply_markup=_inline([[(BACK, "back"), (CANCEL, "cancel")]]),
        )

    @router.message(ReportForm.description, F.text)
    async def description(message: Message, state: FSMContext) -> None:
        value = (message.text or "").strip()
        if not 5 <= len(value) <= 4000:
            await message.answer("Please write between 5 and 4000 characters.")
            return
        await state.update_data(description=value)
        await state.set_state(ReportForm.anonymous)
        await message.answer(
            "<b>Would you like to stay anonymous to our staff?</b>\nIf you choose Yes, the "
            "team handling your report will not see your name. We will still keep you "
            "updated here.",
            reply_markup=_inline(
                [[("Yes", "anon:y"), ("No", "anon:n")], [(BACK, "back"), (CANCEL, "cancel")]]
            ),
        )

    @router.callback_query(ReportForm.anonymous, F.data.startswith("anon:"))
    async def anonymous(query: CallbackQuery, state: FSMContext) -> None:
        await query.answer()
        data = await state.update_data(anonymous=query.data == "anon:y")
        await state.set_state(ReportForm.confirm)
        if not isinstance(query.message, Message):
            return
        edits = [(f"✏️ {name}", f"edit:{name.lower()}") for name in ("Category", "Place")]
        edits2 = [(f"✏️ {name}", f"edit:{name.lower()}") for name in ("Photos", "Description")]
        await query.message.answer(
            _summary(data),
            reply_markup=_inline(
                [
                    edits,
                    edits2,
                    [("✏️ Anonymous", "edit:anonymous")],
                    [("✅ Send the report", "send")],
                    [(BACK, "back"), (CANCEL, "cancel")],
                ]
            ),
        )

    @router.callback_query(ReportForm.confirm, F.data == "send")
    async def send(query: CallbackQuery, state: FSMContext, reports: ReportStore) -> None:
        await query.answer()
        data = await state.get_data()
        report_id = await reports.add(
            telegram_id=query.from_user.id,
            category=data["category"],
            latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            description=data["description"],
            anonymous=data["anonymous"],
        )
        await state.clear()
        if isinstance(query.message, Message):
            await query.message.answer(
                f"🙏 <b>Thank you!</b> Your report number is <b>R-{report_id:06d}</b>.\n"
                "We will message you here whenever its status changes.",
                reply_markup=MAIN_MENU,
            )

    @router.message(StateFilter(None))
    async def outside(message: Message) -> None:
        await message.answer("Choose what you would like to do.", reply_markup=MAIN_MENU)

    return router


def build_baseline(reports: ReportStore, storage: BaseStorage | None = None) -> Dispatcher:
    """A dispatcher with the report flow, its FSM in ``storage`` (in memory by default)."""
    dispatcher = Dispatcher(storage=storage or MemoryStorage())
    dispatcher["reports"] = reports
    dispatcher.include_router(build_report_router())
    return dispatcher


@asynccontextmanager
async def redis_fsm(url: str) -> AsyncIterator[RedisStorage]:
    """aiogram's Redis FSM storage under keys of its own, removed afterwards."""
    prefix = f"citizenbot-bench-{uuid.uuid4().hex}"
    storage = RedisStorage.from_url(url, key_builder=DefaultKeyBuilder(prefix=prefix))
    try:
        yield storage
    finally:
        keys = [key async for key in storage.redis.scan_iter(match=f"{prefix}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await storage.redis.delete(*keys[start : start + 1000])
        await storage.close()


async def redis_answers(url: str) -> bool:
    """Whether a Redis server answers at ``url``."""
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        answer: Any = client.ping()  # redis-py types it as sync or async
        return bool(await answer)
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


def build_echo() -> Dispatcher:
    """A dispatcher that echoes every text: the least an aiogram bot can do per update."""
    dispatcher = Dispatcher()

    @dispatcher.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(html.escape(message.text or ""))

    return dispatcher
