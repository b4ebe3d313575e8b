"""The webhook reads the sender from the raw JSON to refuse a flood before parsing it."""

from __future__ import annotations

import pytest

from bot.runtime.inbox import sender_of


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"update_id": 1, "message": {"from": {"id": 7}, "chat": {"id": 7}}}, (7, 7)),
        ({"update_id": 1, "edited_message": {"from": {"id": 7}, "chat": {"id": -5}}}, (7, -5)),
        (
            {"update_id": 1, "callback_query": {"from": {"id": 7}, "message": {"chat": {"id": 7}}}},
            (7, 7),
        ),
        ({"update_id": 1, "inline_query": {"from": {"id": 7}}}, (7, None)),
        ({"update_id": 1, "channel_post": {"chat": {"id": -100}}}, (None, None)),
        ({"update_id": 1, "message": {"from": {"id": "7"}}}, (None, None)),
        ({"update_id": 1, "message": {"from": {"id": True}}}, (None, None)),
        ({"update_id": 1, "message": "text"}, (None, None)),
        ({"update_id": 1}, (None, None)),
        ([1, 2], (None, None)),
        (None, (None, None)),
    ],
)
def test_the_sender_is_read_only_where_it_plainly_is(
    document: object, expected: tuple[int | None, int | None]
) -> None:
    assert sender_of(document) == expected
