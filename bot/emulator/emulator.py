"""The `Emulator` facade: builds the hub and both APIs and mounts their routes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from bot.emulator.botapi import BotApi
from bot.emulator.hub import Hub
from bot.emulator.params import Params
from bot.emulator.state import BotWorld, CallRecord
from bot.emulator.types import DEFAULT_PERSONAS, FaultRule, Persona, RateLimits
from bot.emulator.userapi import UserApi
from bot.emulator.webhook import WebhookDispatcher

PLAYGROUND_DIR = Path(__file__).parent / "playground"
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1, 2)


class Emulator:
    """A local Telegram Bot API server with a user-side API and a playground page.

    `personas` are the users the playground offers (four sample ones when None);
    with `personas_started` each has started the bot already, so the bot may write to
    them first (the playground's: the bot's database remembers them across restarts);
    `rate_limits` turns Telegram's flood limits on (off when None); failed webhook
    deliveries are retried after each of `webhook_retry_delays`, then at the last
    one until they succeed; `webhook_timeout` bounds one delivery attempt.
    """

    def __init__(
        self,
        *,
        bot_username: str = "citizenbot_local_bot",
        personas: list[Persona] | None = None,
        rate_limits: RateLimits | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = 30.0,
        personas_started: bool = False,
    ) -> None:
        self.hub = Hub(
            bot_username=bot_username,
            personas=DEFAULT_PERSONAS if personas is None else personas,
            rate_limits=rate_limits,
            personas_started=personas_started,
        )
        self._webhooks = WebhookDispatcher(
            retry_delays=webhook_retry_delays,
            timeout=webhook_timeout,
            execute_reply=self._execute_webhook_reply,
        )
        self._bot_api = BotApi(self.hub, self._webhooks)
        self._user_api = UserApi(self.hub, self._webhooks)
        self.hub.queue_listeners.append(self._webhooks.kick)

    # --- mounting ------------------------------------------------------------------

    def setup(self, app: web.Application) -> None:
        """Add the Bot API, user API and playground routes to an existing app.

        Claims `/bot<token>/...`, `/file/bot<token>/...`, `/emulator/...`,
        `/playground/...` and `GET /`; closing the app stops the emulator.
        """
        app.router.add_route("*", "/bot{token}/{method}", self._bot_api.handle_method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._bot_api.handle_file)
        self._user_api.add_routes(app)
        app.router.add_get("/", self._playground_index)
        app.router.add_static("/playground/", PLAYGROUND_DIR)
        # on_shutdown runs before aiohttp waits for open requests: long polls must
        # return then, or shutdown would wait for their timeouts.
        app.on_shutdown.append(self._on_app_close)
        app.on_cleanup.append(self._on_app_close)

    def create_app(self) -> web.Application:
        """A standalone aiohttp application serving only the emulator."""
        app = web.Application()
        self.setup(app)
        return app

    async def close(self) -> None:
        """End pending long polls and webhook deliveries; idempotent."""
        self.hub.closing = True
        self.hub.closed.notify()
        for world in self.hub.worlds():
            world.wake_all()
        self.hub.calls.changed.notify()
        await self._webhooks.close()

    async def _on_app_close(self, app: web.Application) -> None:
        await self.close()

    async def _playground_index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(PLAYGROUND_DIR / "index.html")

    async def _execute_webhook_reply(self, world: BotWorld, method: str, params: Params) -> None:
        await self._bot_api.execute(world, method, params, source="webhook_reply")

    # --- in-process access for tests -------------------------------------------------

    @property
    def personas(self) -> list[Persona]:
        """The personas the playground offers."""
        return list(self.hub.personas)

    def calls(self, method: str | None = None) -> list[CallRecord]:
        """The call log, oldest first, optionally for one method (case-insensitive)."""
        return [
            record
            for record in self.hub.calls.records()
            if method is None or record.method.lower() == method.lower()
        ]

    def add_fault(self, rule: FaultRule) -> FaultRule:
        """Register a fault rule; returns it with its id."""
        return self.hub.faults.add(rule)

    def clear_faults(self) -> None:
        """Drop every fault rule."""
        self.hub.faults.clear()

    def set_rate_limits(self, limits: RateLimits | None) -> None:
        """Turn flood limits on with these values, or off with None."""
        self.hub.limiter.configure(limits)

    def reset(self) -> None:
        """Forget every bot, chat, file, call, fault rule and flood window."""
        for world in self.hub.reset():
            self._webhooks.stop(world)
