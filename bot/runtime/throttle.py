"""Flood control: a user sending too fast is held back before any database work.

A token bucket per user (in memory, per process): ``burst`` updates at once, then
``rate`` per second. Excess updates are not stored; the user is told to slow down
once per ``notice_every`` seconds. Legitimate citizens never come near the limit
(answering a flow is one message every few seconds).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    noticed: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an update may go on, and whether to tell the user to slow down."""

    allowed: bool
    notify: bool = False


class FloodGuard:
    """Per-user token buckets, bounded in memory (least recently seen users forgotten)."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        notice_every: float = 60.0,
        max_users: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.notice_every = notice_every
        self._max_users = max_users
        self._now = monotonic
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()
        self.dropped = 0

    @property
    def tracked_users(self) -> int:
        """How many users have a bucket now."""
        return len(self._buckets)

    def check(self, user_id: int) -> Verdict:
        """Spend one token for ``user_id``; refuse when the bucket is empty."""
        now = self._now()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now, noticed=float("-inf"))
            self._buckets[user_id] = bucket
            if len(self._buckets) > self._max_users:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(user_id)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict(allowed=True)
        self.dropped += 1
        if now - bucket.noticed >= self.notice_every:
            bucket.noticed = now
            return Verdict(allowed=False, notify=True)
        return Verdict(allowed=False)
