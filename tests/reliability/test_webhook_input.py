"""Reliability at the front door: wrong secrets, repeated deliveries, hostile input."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from bot.clock import ManualClock
from storage.models import Citizen, InboxUpdate, Report
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot, webhook_bot

SECRET = "reliability_secret-123"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


def message_update(
    update_id: int, user_id: int, text_: str, *, chat_type: str = "private"
) -> dict[str, Any]:
    chat_id = user_id if chat_type == "private" else -1000 - user_id
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1767225600,
            "chat": {"id": chat_id, "type": chat_type, "title": "g"}
            if chat_type != "private"
            else {"id": chat_id, "type": "private", "first_name": "U"},
            "from": {"id": user_id, "is_bot": False, "first_name": "U", "language_code": "en"},
            "text": text_,
            **(
                {
                    "entities": [
                        {"type": "bot_command", "offset": 0, "length": len(text_.split()[0])}
                    ]
                }
                if text_.startswith("/")
                else {}
            ),
        },
    }


async def scalar(runtime: Any, statement: Any) -> int:
    async with runtime.services.database.uow() as uow:
        return int(await uow.session.scalar(statement) or 0)


async def test_a_thousand_wrong_secrets_are_all_refused_and_nothing_is_stored(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    async with webhook_bot(database_url, emulator_server.url, ManualClock(), SECRET) as (
        runtime,
        url,
    ):
        async with aiohttp.ClientSession() as http:
            statuses: list[int] = []

            async def post(n: int) -> None:
                headers = {} if n % 3 == 0 else {HEADER: SECRET[: n % len(SECRET)] + "x" * (n % 2)}
                if n % 3 == 2:
                    headers = {HEADER: SECRET.upper()}
                async with http.post(
                    url, json=message_update(n + 1, 42, "/start"), headers=headers
                ) as r:
                    statuses.append(r.status)

            for batch in range(10):
                await asyncio.gather(*(post(batch * 100 + n) for n in range(100)))
        assert statuses == [401] * 1000
        assert await scalar(runtime, select(func.count()).select_from(InboxUpdate)) == 0


async def test_one_update_a_hundred_times_in_a_row_and_at_once_has_one_effect(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    client = emulator_server.client
    await client.send_text(77, "hello", user={"id": 77, "first_name": "U"})  # the chat exists
    async with webhook_bot(database_url, emulator_server.url, ManualClock(), SECRET) as (
        runtime,
        url,
    ):
        update = message_update(5000, 77, "/start")
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                async with http.post(url, json=update, headers={HEADER: SECRET}) as response:
                    assert response.status == 200

            async def post() -> int:
                async with http.post(url, json=update, headers={HEADER: SECRET}) as response:
                    return response.status

            assert set(await asyncio.gather(*(post() for _ in range(50)))) == {200}
        await asyncio.wait_for(runtime.inbox.processor.join(), 20)
        welcomes = [
            c
            for c in await client.calls(method="sendMessage", chat_id=77)
            if "Hello" in str(c.params)
        ]
        assert len(welcomes) == 1
        assert await scalar(runtime, select(func.count()).select_from(Citizen)) == 1


BOT = {"id": 424242, "is_bot": True, "first_name": "Citizenbot"}
media = {"file_id": "f", "file_unique_id": "f", "width": 1, "height": 1, "duration": 1}
content = st.one_of(
    st.builds(lambda t: {"text": t}, st.text(min_size=1, max_size=4096)),
    st.builds(lambda t: {"text": t}, st.text(min_size=4090, max_size=4096)),
    st.builds(lambda t: {"text": "/" + t}, st.text(max_size=40)),
    st.sampled_from(
        [
            {"text": "/frobnicate now"},
            {"text": "/start@someone_else_bot"},
            {"text": "/report " + "x" * 4088},
        ]
    ),
    st.just(
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "type": "regular",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
            }
        }
    ),
    st.just({"voice": {"file_id": "v", "file_unique_id": "v", "duration": 1}}),
    st.builds(
        lambda la, lo: {"location": {"latitude": la, "longitude": lo}},
        st.floats(-90, 90),
        st.floats(-180, 180),
    ),
    st.just({"photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]}),
    st.just({"contact": {"phone_number": "+1", "first_name": "x"}}),
    st.just({"document": {"file_id": "d", "file_unique_id": "d"}}),
    st.sampled_from(
        [
            {"video": media},
            {"video_note": {**media, "length": 1}},
            {"animation": media},
            {"audio": {"file_id": "a", "file_unique_id": "a", "duration": 1}},
            {"dice": {"emoji": "🎲", "value": 6}},
            {
                "poll": {
                    "id": "p",
                    "question": "?",
                    "options": [{"persistent_id": "0", "text": "a", "voter_count": 0}],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                    "allows_revoting": False,
                    "members_only": False,
                }
            },
            {
                "venue": {
                    "location": {"latitude": 1.0, "longitude": 2.0},
                    "title": "t",
                    "address": "a",
                }
            },
            {"new_chat_members": [{"id": 5, "is_bot": False, "first_name": "n"}]},
            {"left_chat_member": {"id": 5, "is_bot": False, "first_name": "n"}},
            {
                "text": "hi",
                "forward_origin": {"type": "hidden_user", "date": 1, "sender_user_name": "z"},
            },
        ]
    ),
)
kinds = st.sampled_from(
    [
        "message",
        "edited_message",
        "callback_query",
        "channel_post",
        "edited_channel_post",
        "my_chat_member",
    ]
)
chat_types = st.sampled_from(["private", "private", "group", "supergroup"])
callback_data = st.one_of(
    st.text(max_size=64),
    st.sampled_from(
        [
            "d:",
            "d:1:o0",
            "d:999:ok",
            "sw:",
            "sw:report",
            "lang:xx",
            "shift:x:1",
            "forget:yes",
            "adm:x",
        ]
    ),
)


def build_update(
    update_id: int, kind: str, body: dict[str, Any], chat_type: str, data: str
) -> dict[str, Any]:
    user_id = 600 + update_id % 5
    base = message_update(update_id, user_id, "x", chat_type=chat_type)["message"]
    base.pop("text")
    base.pop("entities", None)
    base.update(body)
    if kind == "callback_query":
        return {
            "update_id": update_id,
            "callback_query": {
                "id": str(update_id),
                "chat_instance": "c",
                "from": base["from"],
                "message": {**base, "text": "old"},
                "data": data,
            },
        }
    if kind == "my_chat_member":
        status = "kicked" if update_id % 2 else "member"
        return {
            "update_id": update_id,
            kind: {
                "chat": base["chat"],
                "from": base["from"],
                "date": base["date"],
                "old_chat_member": {"user": BOT, "status": "member"},
                "new_chat_member": {"user": BOT, "status": status, "until_date": 0},
            },
        }
    if kind in ("channel_post", "edited_channel_post"):
        base.pop("from")
        base["chat"] = {"id": -100777, "type": "channel", "title": "c"}
    if kind.startswith("edited_"):
        base["edit_date"] = base["date"] + 1
    return {"update_id": update_id, kind: base}


@settings(
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(st.lists(st.tuples(kinds, content, chat_types, callback_data), min_size=4, max_size=16))
async def test_hostile_updates_never_crash_never_5xx_never_touch_another_citizen(
    emulator_server: EmulatorServer,
    database_url: str,
    updates: list[tuple[str, dict[str, Any], str, str]],
) -> None:
    bystander = 999
    async with webhook_bot(
        database_url, emulator_server.url, ManualClock(), SECRET, flood_burst=1000
    ) as (runtime, url):
        citizen_id, before, base = await bystander_and_first_id(runtime, bystander)
        async with aiohttp.ClientSession() as http:
            for offset, (kind, body, chat_type, data) in enumerate(updates):
                update = build_update(base + offset, kind, body, chat_type, data)
                async with http.post(url, json=update, headers={HEADER: SECRET}) as response:
                    assert response.status < 500, await response.text()
        await asyncio.wait_for(runtime.inbox.processor.join(), 30)
        assert await failed_updates(runtime) == 0
        assert await snapshot(runtime, citizen_id) == before


async def bystander_and_first_id(runtime: Any, telegram_id: int) -> tuple[int, list[Any], int]:
    """A citizen who sends nothing: their id and data; and the next free update id."""
    async with runtime.services.database.uow() as uow:
        citizen, _ = await uow.repos.citizens.ensure(
            telegram_id=telegram_id,
            language="fr",
            first_name="B",
            username="b",
            now=runtime.services.clock.now(),
        )
    before = await snapshot(runtime, citizen.id)
    base = await scalar(runtime, select(func.max(InboxUpdate.update_id))) + 1
    return citizen.id, before, base


async def failed_updates(runtime: Any) -> int:
    """Updates set aside as failed."""
    statement = select(func.count()).select_from(InboxUpdate).where(InboxUpdate.status == "failed")
    return int(await scalar(runtime, statement))


async def snapshot(runtime: Any, citizen_id: int) -> list[Any]:
    async with runtime.services.database.uow() as uow:
        rows = []
        for table in ("citizens", "dialog_sessions", "reports", "ratings", "signups"):
            column = "id" if table == "citizens" else "citizen_id"
            result = await uow.session.execute(
                text(f"SELECT * FROM {table} WHERE {column} = :c"), {"c": citizen_id}
            )
            rows.append([tuple(row) for row in result.all()])
        rows.append(await uow.session.scalar(select(func.count()).select_from(Report)))
        return rows


@settings(
    max_examples=10,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    deadline=None,
)
@given(st.lists(st.tuples(kinds, content, chat_types, callback_data), min_size=4, max_size=16))
async def test_hostile_updates_by_polling_never_crash_never_touch_another_citizen(
    emulator_server: EmulatorServer,
    database_url: str,
    updates: list[tuple[str, dict[str, Any], str, str]],
) -> None:
    client = emulator_server.client
    bystander, marker = 999, 998
    await client.clear_calls()
    async with running_bot(database_url, emulator_server.url, ManualClock()) as runtime:
        citizen_id, before, base = await bystander_and_first_id(runtime, bystander)
        hostile = [
            build_update(base + offset, kind, body, chat_type, data)
            for offset, (kind, body, chat_type, data) in enumerate(updates)
        ]
        last = message_update(base + len(hostile), marker, "/help")
        await client.inject_updates([*hostile, last])
        # The bot still answers after them: it fetched them all and did not die.
        await client.wait_for_call(
            "sendMessage", chat_id=marker, predicate=lambda c: c.ok, timeout=60
        )
        await asyncio.wait_for(runtime.inbox.processor.join(), 30)
        assert await failed_updates(runtime) == 0
        assert await snapshot(runtime, citizen_id) == before
