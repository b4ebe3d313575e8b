"""sweep_every: sweeps at once and then on its interval, outlives a failed sweep, stops."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.periodic import sweep_every


async def test_a_failed_sweep_is_logged_and_the_next_one_comes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping = asyncio.Event()
    calls = 0

    async def sweep() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        if calls == 3:
            stopping.set()

    log = logging.getLogger("tests.periodic")
    with caplog.at_level(logging.ERROR, logger="tests.periodic"):
        await asyncio.wait_for(
            sweep_every(0.01, stopping, sweep, log=log, failure="test sweep failed"), 5
        )
    assert calls == 3
    assert [record.getMessage() for record in caplog.records] == ["test sweep failed"]


async def test_nothing_runs_once_stopping() -> None:
    stopping = asyncio.Event()
    stopping.set()
    calls: list[int] = []

    async def sweep() -> None:
        calls.append(1)

    await sweep_every(60, stopping, sweep, log=logging.getLogger(__name__), failure="x")
    assert calls == []
