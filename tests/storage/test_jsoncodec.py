"""JSON text with orjson, and the standard library's way for what orjson refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from storage import jsoncodec
from storage.db import Database
from storage.records import IncomingUpdate
from tests.support.sessions import citizen_with_session, save_state

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_what_orjson_refuses_is_written_as_before() -> None:
    plain = {"text": "é ✓ \u2028", "n": 2**63 - 1, "x": 1.5, "list": [None, True, {"a": []}]}
    assert json.loads(jsoncodec.dumps(plain)) == plain
    for refused in ({"big": 2**64}, {1: "key"}, {"lone": "\ud800"}):
        assert jsoncodec.dumps(refused) == json.dumps(refused)
    for document in ('{"a": [1, "é"]}', b'{"text": "\\ud800"}', '{"n": 9007199254740993}'):
        assert jsoncodec.loads_bot_api(document) == json.loads(document)


def test_postgresql_text_marks_where_nul_characters_were() -> None:
    assert json.loads(jsoncodec.dumps_jsonb({"t": "a\x00b\x00"})) == {"t": "a\ufffdb\ufffd"}
    # A backslash followed by "u0000" is text, not a NUL; a backslash and then a NUL
    # keep their backslash.
    assert json.loads(jsoncodec.dumps_jsonb({"t": "\\u0000"})) == {"t": "\\u0000"}
    assert json.loads(jsoncodec.dumps_jsonb({"t": "\\\x00"})) == {"t": "\\\ufffd"}
    assert jsoncodec.dumps_jsonb({"t": "plain"}) == jsoncodec.dumps({"t": "plain"})


async def test_nul_characters_are_stored_on_either_database(database: Database) -> None:
    """An inbox payload and a dialog state with NUL characters are stored: as they are
    on SQLite, marked on PostgreSQL (whose JSONB refuses them)."""
    citizen_id = await citizen_with_session(database, 77, NOW)
    text = "a\x00b"
    kept = text if database.is_sqlite else "a\ufffdb"
    async with database.uow() as uow:
        update = IncomingUpdate(update_id=1, chat_id=77, user_id=77, payload={"text": text})
        assert await uow.repos.inbox.store([update], NOW) == [1]
        await save_state(
            uow, citizen_id, {"answer": text}, now=NOW, expires_at=NOW + timedelta(hours=1)
        )
    async with database.uow() as uow:
        (claimed,) = await uow.repos.inbox.pending()
        assert claimed.payload == {"text": kept}
        reread = await uow.repos.sessions.get(citizen_id)
    assert reread is not None and reread.state == {"answer": kept}
