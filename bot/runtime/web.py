"""The bot's web server: the webhook, the health check, and (when emulated) the emulator."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from bot.runtime.context import Services
from bot.runtime.inbox import Inbox, sender_of, to_incoming
from storage import jsoncodec

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
SERVICES_KEY = web.AppKey("services", Services)
INBOX_KEY = web.AppKey("inbox", Inbox)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    services = request.app[SERVICES_KEY]
    if not await services.database.ping():
        return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)
    inbox = request.app[INBOX_KEY]
    return web.json_response({"status": "ok", "database": "ok", "backlog": inbox.processor.backlog})


def webhook_handler(secret: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The webhook endpoint: the secret first, then store, then answer 200."""
    expected = secret.encode()

    async def receive(request: web.Request) -> web.StreamResponse:
        given = request.headers.get(SECRET_HEADER, "").encode()
        # Constant time, so the secret cannot be guessed byte by byte from timings.
        if not hmac.compare_digest(given, expected):
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        inbox = request.app[INBOX_KEY]
        try:
            document = jsoncodec.loads_bot_api(await request.read())
            user_id, chat_id = sender_of(document)
            # A flooder is refused here, before the update is even parsed: the flood
            # costs the others as little of the event loop as possible.
            if user_id is not None and not inbox.admit(user_id, chat_id, document):
                return web.json_response({"ok": True})
            update = inbox.parse(document)
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError, TypeError):
            return web.json_response({"ok": False, "description": "Bad Request"}, status=400)
        try:
            await inbox.receive([to_incoming(update, document)], admitted=user_id is not None)
        except Exception:
            log.exception("could not store update %s", update.update_id)
            return web.json_response({"ok": False, "description": "Try again"}, status=503)
        return web.json_response({"ok": True})

    return receive


def build_web_app(
    services: Services, inbox: Inbox, *, webhook_secret: str | None
) -> web.Application:
    """The aiohttp application: /healthz always, the webhook route in webhook mode."""
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[SERVICES_KEY] = services
    app[INBOX_KEY] = inbox
    app.router.add_get("/healthz", healthz)
    if webhook_secret is not None:
        app.router.add_post(services.settings.webhook_path, webhook_handler(webhook_secret))
    return app
