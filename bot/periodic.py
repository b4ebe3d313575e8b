"""Background sweeps: one call now, then one every interval until the bot stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


async def sweep_every(
    interval: float,
    stopping: asyncio.Event,
    sweep: Callable[[], Awaitable[object]],
    *,
    log: logging.Logger,
    failure: str,
) -> None:
    """Call ``sweep`` now, then every ``interval`` seconds until ``stopping``.

    A sweep that raises is logged (``failure``) and the next one comes as usual.
    """
    while not stopping.is_set():
        try:
            await sweep()
        except Exception:
            log.exception(failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
