"""Long polling that confirms updates to the Bot API only after they are stored."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiogram import Bot
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.methods import GetUpdates
from pydantic import ValidationError

from bot.runtime.inbox import Inbox, sender_of, to_incoming
from storage.records import IncomingUpdate

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


def salvage(answer: object, inbox: Inbox) -> tuple[list[IncomingUpdate], list[IncomingUpdate]]:
    """A getUpdates answer aiogram could not read whole, update by update: those it
    reads, and those it does not (kept as they came, for an operator to look at).

    One update this aiogram cannot read (a field the Bot API added, say) must not stop
    the bot: the whole answer is refused, and the same answer would come back forever.
    Raises ``ValueError`` when the answer is no list of updates.
    """
    result = answer.get("result") if isinstance(answer, dict) and answer.get("ok") else None
    if not isinstance(result, list) or not result:
        raise ValueError("the answer holds no updates")
    readable: list[IncomingUpdate] = []
    unreadable: list[IncomingUpdate] = []
    for document in result:
        update_id = document.get("update_id") if isinstance(document, dict) else None
        if type(update_id) is not int:
            raise ValueError("an update without an id")
        try:
            readable.append(to_incoming(inbox.parse(document), document))
        except ValidationError:
            user_id, chat_id = sender_of(document)
            unreadable.append(
                IncomingUpdate(
                    update_id=update_id, chat_id=chat_id, user_id=user_id, payload=document
                )
            )
    return readable, unreadable


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
        except ClientDecodeError as error:
            try:
                readable, unreadable = salvage(error.data, inbox)
            except ValueError:
                log.exception("polling failed; retrying in %.1fs", backoff)
            else:
                log.error("%d update(s) could not be read; kept as failed", len(unreadable))
                try:
                    await inbox.receive(readable)
                    await inbox.record_unreadable(unreadable)
                except Exception:
                    log.exception("polling failed; retrying in %.1fs", backoff)
                else:
                    offset = max(item.update_id for item in readable + unreadable) + 1
                    backoff = 0.5
                    continue
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
