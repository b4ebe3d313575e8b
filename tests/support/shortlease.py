"""``python -m tests.support.shortlease run``: the real bot, waking its workers often.

Lease lengths are settings (FOLLOWUP_LEASE_SECONDS, OUTBOX_LEASE_SECONDS), but how
often the follow-up runner wakes (30 s) and how often the outbox sender looks for
expired leases (10 s) are not: ``bot.app.run`` builds both with their defaults.
Tests that kill a process and wait for another to take over its claims set them
from the environment, in seconds:

* ``TEST_FOLLOWUP_INTERVAL``: the follow-up runner's wake-up interval;
* ``TEST_OUTBOX_RECOVERY``: the outbox sender's recovery interval.

Everything else is ``python -m bot run`` unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys

import bot.app
from bot.cli import main
from bot.followups.runner import FollowUpRunner
from bot.outbox.sender import OutboxSender


def _seconds(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


class OftenWakingRunner(FollowUpRunner):
    """The follow-up runner, waking every TEST_FOLLOWUP_INTERVAL seconds."""

    async def run(self, stopping: asyncio.Event, *, interval: float | None = None) -> None:
        """As the parent, with the interval of the environment."""
        await super().run(stopping, interval=_seconds("TEST_FOLLOWUP_INTERVAL") or interval)


class OftenRecoveringSender(OutboxSender):
    """The outbox sender, looking for expired leases every TEST_OUTBOX_RECOVERY seconds."""

    async def run(self, stopping: asyncio.Event, *, recovery_interval: float = 10.0) -> None:
        """As the parent, with the recovery interval of the environment."""
        await super().run(
            stopping,
            recovery_interval=_seconds("TEST_OUTBOX_RECOVERY") or recovery_interval,
        )


if __name__ == "__main__":
    # bot.app.run looks both classes up when it starts its workers.
    setattr(bot.app, "FollowUpRunner", OftenWakingRunner)  # noqa: B010
    setattr(bot.app, "OutboxSender", OftenRecoveringSender)  # noqa: B010
    sys.exit(main())
