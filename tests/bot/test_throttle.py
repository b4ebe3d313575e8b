"""Flood control: bursts allowed, floods refused, one notice per window, memory bounded."""

from __future__ import annotations

from bot.runtime.throttle import FloodGuard


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_applies() -> None:
    clock = FakeTime()
    guard = FloodGuard(rate=1.0, burst=5, notice_every=60, monotonic=clock)
    assert [guard.check(1).allowed for _ in range(5)] == [True] * 5
    refused = guard.check(1)
    assert not refused.allowed and refused.notify
    assert guard.check(1) == guard.check(1)  # quiet refusals: one notice per window
    assert not guard.check(1).notify
    clock.now += 2.0
    assert guard.check(1).allowed and guard.check(1).allowed
    assert not guard.check(1).allowed
    clock.now += 61
    assert guard.check(1).allowed  # refilled
    assert guard.dropped == 5


def test_users_do_not_share_a_bucket() -> None:
    guard = FloodGuard(rate=0.1, burst=2, monotonic=FakeTime())
    for _ in range(10):
        guard.check(1)
    assert guard.check(2).allowed


def test_memory_is_bounded() -> None:
    guard = FloodGuard(rate=1, burst=1, max_users=100, monotonic=FakeTime())
    for user in range(1000):
        guard.check(user)
    assert guard.tracked_users == 100
