"""Update documents as the Bot API sends them, and a stand-in Bot API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


def private_message(update_id: int, chat: int, **content: Any) -> dict[str, Any]:
    """A message from user ``chat`` in their private chat with the bot; ``content``
    is the message's own fields (``text=...``, a poll...)."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": chat, "is_bot": False, "first_name": "Ada"},
            **content,
        },
    }


@asynccontextmanager
async def bot_api(
    method: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A Bot API on a local port whose every method ``method`` answers (the method's
    name is ``request.match_info["method"]``); yields the base URL for
    ``TelegramAPIServer.from_base``."""
    app = web.Application()
    app.router.add_post("/bot{token}/{method}", method)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
