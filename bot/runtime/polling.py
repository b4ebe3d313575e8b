"""Long polling that confirms updates to the Bot API only after they are stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import TelegramConflictError, TelegramNetworkError, TelegramServerError
from aiogram.methods import GetUpdates

from bot.runtime.inbox import Inbox, to_incoming

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


async def poll_updates(
    bot: Bot,
    inbox: Inbox,
    *,
    poll_timeout: int,
    allowed_updates: Sequence[str],
    stopping: asyncio.Event,
) -> None:
    """Fetch, store, then confirm (the next call's offset) until ``stopping`` is set.

    If storing fails, the offset does not move, so the Bot API sends the same
    updates again: nothing is confirmed that is not safely in the inbox.
    """
    offset: int | None = None
    backoff = 0.5
    while not stopping.is_set():
        try:
            updates = await bot(
                GetUpdates(
                    offset=offset, timeout=poll_timeout, allowed_updates=list(allowed_updates)
                ),
                request_timeout=poll_timeout + 15,
            )
            if updates:
                await inbox.receive([to_incoming(update) for update in updates])
                offset = updates[-1].update_id + 1
            backoff = 0.5
        except asyncio.CancelledError:
            raise
        except (TelegramNetworkError, TelegramServerError, TelegramConflictError, OSError) as error:
            log.warning("polling paused %.1fs: %s", backoff, type(error).__name__)
        except Exception:
            log.exception("polling failed; retrying in %.1fs", backoff)
        else:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
