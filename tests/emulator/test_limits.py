"""Flood limits and fault injection, seen through aiogram's exceptions."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.emulator import Emulator, FaultRule, RateLimits
from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import ALICE, CAMILLE

GROUP = -1001234567890


async def test_second_quick_send_to_a_private_chat_is_flood_limited(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await client.set_rate_limits(RateLimits())
    await bot.send_message(alice_chat, "one")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(alice_chat, "two")
    assert raised.value.retry_after == 1
    assert "Too Many Requests: retry after 1" in raised.value.message
    # Edits and callback answers are outside the limits.
    await bot.edit_message_text("one, edited", chat_id=alice_chat, message_id=2)


async def test_limits_are_off_by_default(bot: Bot, alice_chat: int) -> None:
    for index in range(5):
        await bot.send_message(alice_chat, f"message {index}")


async def test_group_limit_is_per_minute(bot: Bot, client: EmulatorClient) -> None:
    await client.set_rate_limits(RateLimits(per_group_chat_per_minute=3))
    await bot.get_me()
    await client.send_text(GROUP, "/start", user={"id": ALICE}, chat_title="Volunteers")
    for index in range(3):
        await bot.send_message(GROUP, f"shift {index}")
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(GROUP, "one more")
    assert 55 <= raised.value.retry_after <= 60


async def test_overall_limit_and_paid_broadcasts(bot: Bot, client: EmulatorClient) -> None:
    await client.set_rate_limits(RateLimits(per_bot_per_second=2, paid_broadcast_per_second=10))
    await bot.get_me()
    users = [ALICE, CAMILLE, 100003, 100004]
    for user in users:
        await client.send_text(user, "/start")
    await bot.send_message(users[0], "news")
    await bot.send_message(users[1], "news")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(users[2], "news")
    await bot.send_message(users[2], "news", allow_paid_broadcast=True)
    await client.set_rate_limits(None)
    await bot.send_message(users[3], "news")


def test_constructor_turns_limits_on() -> None:
    emulator = Emulator(rate_limits=RateLimits(per_private_chat_per_second=2))
    assert emulator.hub.limiter.limits == RateLimits(per_private_chat_per_second=2)


async def test_fault_429_500_403(bot: Bot, alice_chat: int, client: EmulatorClient) -> None:
    await client.add_fault(FaultRule(method="sendMessage", error_code=429, retry_after=7))
    await client.add_fault(FaultRule(method="sendMessage", error_code=500, times=2))
    await client.add_fault(FaultRule(method="*", error_code=403))
    with pytest.raises(TelegramRetryAfter) as raised:
        await bot.send_message(alice_chat, "x")
    assert raised.value.retry_after == 7
    for _ in range(2):
        with pytest.raises(TelegramServerError, match="Internal Server Error"):
            await bot.send_message(alice_chat, "x")
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(alice_chat, "x")
    assert await client.faults() == []
    sent = await bot.send_message(alice_chat, "finally")
    assert sent.text == "finally"


async def test_fault_limited_to_a_chat(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    await client.send_text(ALICE, "/start")
    await client.send_text(CAMILLE, "/start")
    await client.add_fault(
        FaultRule(chat_id=CAMILLE, error_code=400, description="Bad Request: custom")
    )
    await bot.send_message(ALICE, "unaffected")
    with pytest.raises(TelegramBadRequest, match="Bad Request: custom"):
        await bot.send_message(CAMILLE, "affected")


async def test_delay_makes_the_client_time_out(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await client.add_fault(FaultRule(method="sendMessage", delay=2.0))
    with pytest.raises(TelegramNetworkError, match="Request timeout error"):
        await bot.send_message(alice_chat, "slow", request_timeout=0.2)  # type: ignore[call-arg]


async def test_dropped_connection_after_the_effect(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await client.add_fault(FaultRule(method="sendMessage", drop_connection=True, after_effect=True))
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(alice_chat, "sent but unconfirmed")
    history = await client.history(alice_chat)
    assert [m.text for m in history.bot_messages] == ["sent but unconfirmed"]
    (call,) = await client.calls(method="sendMessage")
    assert call.dropped
    assert not call.ok


async def test_faults_can_be_listed_and_removed(client: EmulatorClient) -> None:
    rule = await client.add_fault(FaultRule(method="getMe", error_code=502, times=3))
    assert rule.id > 0
    assert [r.times for r in await client.faults()] == [3]
    await client.clear_faults()
    assert await client.faults() == []


async def test_rate_limit_state_via_the_user_api(client: EmulatorClient) -> None:
    assert await client.rate_limits() is None
    await client.set_rate_limits(RateLimits(paid_broadcast=True))
    limits = await client.rate_limits()
    assert limits is not None
    assert limits.paid_broadcast


async def test_delayed_call_returns_the_real_result(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await client.add_fault(FaultRule(method="sendMessage", delay=0.05))
    async with asyncio.timeout(2):
        sent = await bot.send_message(alice_chat, "late")
    assert sent.text == "late"
