"""Flood control and fault injection: the two ways a call fails on purpose."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from bot.emulator.types import FaultRule, RateLimits


class _Window:
    """Sliding window of event times for one key."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: deque[float] = deque()

    def retry_after(self, now: float, limit: int, seconds: float) -> float | None:
        while self.events and self.events[0] <= now - seconds:
            self.events.popleft()
        if len(self.events) < limit:
            return None
        return self.events[-limit] + seconds - now


class RateLimiter:
    """Telegram's send limits per bot, per private chat and per group, if enabled."""

    def __init__(self, limits: RateLimits | None, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._windows: dict[tuple[int | None, str, int], _Window] = {}

    def configure(self, limits: RateLimits | None) -> None:
        """Change (or disable with None) the limits; past sends keep counting."""
        self.limits = limits

    def _checks(
        self, bot_id: int | None, chat_id: int, paid: bool
    ) -> list[tuple[tuple[int | None, str, int], int, float]]:
        limits = self.limits
        if limits is None:
            return []
        overall = (
            limits.paid_broadcast_per_second
            if paid or limits.paid_broadcast
            else limits.per_bot_per_second
        )
        checks = [((bot_id, "bot", 0), overall, 1.0)]
        if chat_id < 0:
            checks.append(((bot_id, "chat", chat_id), limits.per_group_chat_per_minute, 60.0))
        else:
            checks.append(((bot_id, "chat", chat_id), limits.per_private_chat_per_second, 1.0))
        return checks

    def check(self, bot_id: int | None, chat_id: int, *, paid: bool = False) -> int | None:
        """Seconds to wait (an integer, at least 1) if a send now would exceed a limit."""
        now = self._clock()
        worst: float | None = None
        for key, limit, seconds in self._checks(bot_id, chat_id, paid):
            window = self._windows.get(key)
            if window is None:
                continue
            wait = window.retry_after(now, limit, seconds)
            if wait is not None and (worst is None or wait > worst):
                worst = wait
        return None if worst is None else max(1, math.ceil(worst))

    def record(self, bot_id: int | None, chat_id: int, *, paid: bool = False) -> None:
        """Count a send that went through."""
        now = self._clock()
        for key, _, _ in self._checks(bot_id, chat_id, paid):
            self._windows.setdefault(key, _Window()).events.append(now)

    def clear(self) -> None:
        """Forget past sends."""
        self._windows.clear()


class FaultInjector:
    """Fault rules, each consumed by the next `times` calls it matches."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, rule: FaultRule) -> FaultRule:
        """Register a rule and return it with its id."""
        stored = replace(rule, id=self._next_id)
        self._next_id += 1
        self._rules.append(stored)
        return stored

    def rules(self) -> list[FaultRule]:
        """The rules still active, in the order they match."""
        return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        """Drop one rule; False if it does not exist (any more)."""
        before = len(self._rules)
        self._rules = [rule for rule in self._rules if rule.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        """Drop every rule."""
        self._rules.clear()

    def take(self, method: str, chat_id: int | None) -> FaultRule | None:
        """The first rule matching this call, consuming one of its uses."""
        for index, rule in enumerate(self._rules):
            if rule.method != "*" and rule.method.lower() != method.lower():
                continue
            if rule.chat_id is not None and rule.chat_id != chat_id:
                continue
            if rule.times <= 1:
                del self._rules[index]
            else:
                self._rules[index] = replace(rule, times=rule.times - 1)
            return rule
        return None
