"""Webhook delivery, as Telegram does it.

Updates of one chat are delivered one after the other (a "lane" per chat), lanes
run concurrently up to the webhook's max_connections, and a failed delivery is
retried after each of the configured delays in turn, then at the last one forever.
A 2xx answer whose body names a `method` is executed as a Bot API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

import aiohttp

from bot.emulator.errors import BotApiError
from bot.emulator.params import Params, read_multipart
from bot.emulator.state import BotWorld, QueuedUpdate, WebhookConfig

log = logging.getLogger(__name__)

ExecuteReply = Callable[[BotWorld, str, Params], Awaitable[None]]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret


def lane_of(entry: QueuedUpdate) -> str:
    """The ordering lane of an update: its chat, else its sender, else a shared one."""
    if entry.lane is not None:
        return entry.lane
    body = entry.payload.get(entry.kind)
    if not isinstance(body, dict):
        return "other"
    message = body.get("message") if entry.kind == "callback_query" else body
    chat = message.get("chat") if isinstance(message, dict) else None
    if isinstance(chat, dict) and "id" in chat:
        return f"chat:{chat['id']}"
    sender = body.get("from")
    if isinstance(sender, dict) and "id" in sender:
        return f"user:{sender['id']}"
    return "other"


class WebhookDispatcher:
    """Delivers every world's queued updates to its webhook."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float],
        timeout: float,
        execute_reply: ExecuteReply,
    ) -> None:
        if not retry_delays:
            raise ValueError("webhook_retry_delays needs at least one delay")
        self._delays = tuple(retry_delays)
        self._timeout = timeout
        self._execute_reply = execute_reply
        self._lanes: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._limits: dict[int, tuple[int, asyncio.Semaphore]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- control -------------------------------------------------------------------

    def configure(self, world: BotWorld) -> None:
        """React to setWebhook/deleteWebhook: start delivering, or stop."""
        if world.webhook is None:
            self.stop(world)
        else:
            self.kick(world)

    def kick(self, world: BotWorld) -> None:
        """Start a lane for every chat with pending updates (called on each new update)."""
        if world.webhook is None or world.closed or self._closed:
            return
        for entry in world.queue.entries:
            key = (id(world), lane_of(entry))
            if key not in self._lanes:
                self._lanes[key] = asyncio.create_task(self._run_lane(world, key[1]))

    def stop(self, world: BotWorld) -> None:
        """Cancel the world's deliveries; undelivered updates stay queued."""
        for key, task in list(self._lanes.items()):
            if key[0] == id(world):
                task.cancel()
                del self._lanes[key]

    async def close(self) -> None:
        """Cancel every delivery and close the HTTP session."""
        self._closed = True
        tasks = list(self._lanes.values())
        self._lanes.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- delivery ------------------------------------------------------------------

    def _semaphore(self, world: BotWorld, config: WebhookConfig) -> asyncio.Semaphore:
        current = self._limits.get(id(world))
        if current is None or current[0] != config.max_connections:
            current = (config.max_connections, asyncio.Semaphore(config.max_connections))
            self._limits[id(world)] = current
        return current[1]

    async def _run_lane(self, world: BotWorld, lane: str) -> None:
        key = (id(world), lane)
        try:
            while True:
                entry = next((e for e in world.queue.entries if lane_of(e) == lane), None)
                if entry is None or world.webhook is None:
                    return
                await self._deliver(world, entry)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("webhook lane %s failed", lane)
        finally:
            if self._lanes.get(key) is asyncio.current_task():
                del self._lanes[key]

    async def _deliver(self, world: BotWorld, entry: QueuedUpdate) -> None:
        attempt = 0
        while True:
            config = world.webhook
            if config is None or entry not in world.queue.entries:
                return
            async with self._semaphore(world, config):
                error, reply = await self._post(config, entry)
            if error is None:
                world.queue.remove(entry)
                if reply is not None:
                    await self._execute_reply(world, reply[0], reply[1])
                return
            config.last_error_date = int(time.time())
            config.last_error_message = error
            delay = self._delays[min(attempt, len(self._delays) - 1)]
            attempt += 1
            log.info("webhook delivery of update %s failed (%s)", entry.update_id, error)
            await asyncio.sleep(delay)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _post(
        self, config: WebhookConfig, entry: QueuedUpdate
    ) -> tuple[str | None, tuple[str, Params] | None]:
        headers = {"Content-Type": "application/json"}
        if config.secret_token:
            headers[SECRET_HEADER] = config.secret_token
        try:
            async with self._http().post(
                config.url,
                data=json.dumps(entry.payload, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                if not 200 <= response.status < 300:
                    return (
                        f"Wrong response from the webhook: {response.status} {response.reason}",
                        None,
                    )
                return None, await _read_reply(response)
        except TimeoutError:
            return "Read timeout expired", None
        except aiohttp.ClientConnectorError:
            return "Connection refused", None
        except aiohttp.ClientError as error:
            return f"Connection failed: {type(error).__name__}", None


async def _read_reply(response: aiohttp.ClientResponse) -> tuple[str, Params] | None:
    """A Bot API call carried in the webhook's answer, if there is one."""
    content_type = response.content_type
    try:
        if content_type == "application/json":
            raw: Any = json.loads(await response.read() or b"null")
            params = Params(raw) if isinstance(raw, dict) else None
        elif content_type == "multipart/form-data":
            params = await read_multipart(
                aiohttp.MultipartReader(response.headers, response.content)
            )
        elif content_type == "application/x-www-form-urlencoded":
            params = Params(dict(parse_qsl((await response.read()).decode())))
        else:
            return None
    except (ValueError, aiohttp.ClientError, BotApiError):
        return None
    if params is None:
        return None
    method = params.values.pop("method", None)
    if not isinstance(method, str) or not method:
        return None
    return method, params
