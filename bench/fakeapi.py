"""A fast fake Bot API server on loopback, and the webhook floor for the webhook benchmark.

The bot under load sends its replies here; every method answers with a plausible
result (a Message with increasing ids for sendMessage, True for most others), at once
or after ``--latency`` milliseconds (the round trip to Telegram's servers), never
limiting the rate. ``POST /floor`` is a minimal aiohttp
webhook (secret check, JSON parse, 200): the load generator's and aiohttp's floor.

    python -m bench.fakeapi --port 8999 [--latency 30]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "citizenbot", "username": "citizenbot_bot"}
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_KEY = web.AppKey("secret", str)


class FakeBotApi:
    """Answers Bot API methods; counts them."""

    def __init__(self, latency: float = 0.0) -> None:
        self.calls: Counter[str] = Counter()
        self.latency = latency  # seconds before each answer
        self._message_ids = itertools.count(1)

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            document = await request.json()
            return document if isinstance(document, dict) else {}
        return dict(await request.post())

    def _message(self, params: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(params.get("chat_id", 0)), "type": "private", "first_name": "C"},
            "from": BOT_USER,
            "text": str(params.get("text", "")),
        }
        markup = params.get("reply_markup")  # a JSON string in a form, an object in JSON
        if isinstance(markup, str):
            markup = json.loads(markup)
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards
        return message

    async def method(self, request: web.Request) -> web.Response:
        """``/bot<token>/<method>``."""
        name = request.match_info["method"]
        self.calls[name] += 1
        params = await self._params(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        result: Any = True
        if name in ("sendMessage", "editMessageText"):
            result = self._message(params)
        elif name == "getMe":
            result = BOT_USER
        elif name == "getUpdates":
            result = []
        elif name == "getWebhookInfo":
            result = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return web.json_response({"ok": True, "result": result})

    async def stats(self, _request: web.Request) -> web.Response:
        """How many calls of each method were answered."""
        return web.json_response({"calls": dict(self.calls)})


async def floor_webhook(request: web.Request) -> web.Response:
    """The least a webhook does: check the secret, parse the JSON, answer 200."""
    given = request.headers.get(SECRET_HEADER, "").encode()
    if not hmac.compare_digest(given, request.app[SECRET_KEY].encode()):
        return web.json_response({"ok": False}, status=401)
    await request.json()
    return web.json_response({"ok": True})


def build_app(secret: str, latency: float = 0.0) -> web.Application:
    """The fake Bot API and the floor webhook in one aiohttp application."""
    api = FakeBotApi(latency)
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[SECRET_KEY] = secret
    app.router.add_route("*", "/bot{token}/{method}", api.method)
    app.router.add_get("/stats", api.stats)
    app.router.add_post("/floor", floor_webhook)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve on 127.0.0.1 until killed."""
    parser = argparse.ArgumentParser(prog="python -m bench.fakeapi")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--latency", type=float, default=0.0, help="milliseconds per answer")
    args = parser.parse_args(argv)
    web.run_app(
        build_app(args.secret, args.latency / 1000),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=lambda _: print(f"fakeapi: listening on 127.0.0.1:{args.port}", flush=True),
    )


if __name__ == "__main__":
    main()
