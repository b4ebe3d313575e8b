"""A citizen driving the bot through the emulator, waiting on what the bot says."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.emulator.client import ChatMessage, EmulatorClient


def containing(fragment: str) -> Any:
    """A predicate on bot messages, named for clear timeout errors."""

    def check(message: ChatMessage) -> bool:
        return fragment in message.content

    check.__name__ = f"a bot message containing {fragment!r}"
    return check


class Citizen:
    """One Telegram user in a private chat with the bot."""

    def __init__(self, client: EmulatorClient, user: Mapping[str, Any]) -> None:
        self.client = client
        self.user = dict(user)
        self.id = int(user["id"])

    async def send(self, text: str, *, expect: str, timeout: float = 30.0) -> ChatMessage:  # noqa: ASYNC109
        """Send a text and wait for a bot message containing ``expect``."""
        sent = await self.client.send_text(self.id, text, user=self.user)
        return await self.client.wait_for_bot_message(
            self.id, after=sent.message_id, predicate=containing(expect), timeout=timeout
        )

    async def location(
        self,
        latitude: float,
        longitude: float,
        *,
        expect: str,
        timeout: float = 30.0,  # noqa: ASYNC109
    ) -> ChatMessage:
        """Share a pin and wait for ``expect``."""
        sent = await self.client.send_location(self.id, latitude, longitude, user=self.user)
        return await self.client.wait_for_bot_message(
            self.id, after=sent.message_id, predicate=containing(expect), timeout=timeout
        )

    async def photo(self, data: bytes, *, expect: str) -> ChatMessage:
        """Send a photo and wait for ``expect``."""
        sent = await self.client.send_photo(self.id, data, user=self.user)
        return await self.client.wait_for_bot_message(
            self.id, after=sent.message_id, predicate=containing(expect), timeout=30
        )

    async def sticker(self, *, expect: str, timeout: float = 30.0) -> ChatMessage:  # noqa: ASYNC109
        """Send a sticker and wait for ``expect``."""
        sent = await self.client.send_sticker(self.id, user=self.user)
        return await self.client.wait_for_bot_message(
            self.id, after=sent.message_id, predicate=containing(expect), timeout=timeout
        )

    async def tap(self, button: str, *, expect: str, timeout: float = 30.0) -> ChatMessage:  # noqa: ASYNC109
        """Press the newest inline button labelled ``button``; wait for ``expect``.

        The pressed message itself counts when the bot edits it into the answer.
        """
        history = await self.client.history(self.id)
        target = next((m for m in reversed(history.bot_messages) if button in m.button_texts), None)
        if target is None:
            shown = [m.button_texts for m in history.bot_messages[-3:]]
            raise AssertionError(f"no button {button!r}; the last buttons were {shown}")
        last = history.messages[-1].message_id
        await self.client.press_button(self.id, target.message_id, text=button)
        return await self.client.wait_for_bot_message(
            self.id,
            after=min(last, target.message_id - 1),
            predicate=lambda m: (
                (m.message_id > last or m.message_id == target.message_id) and containing(expect)(m)
            ),
            description=f"a bot message containing {expect!r} after pressing {button!r}",
            timeout=timeout,
        )

    async def keyboard(self) -> list[str]:
        """The reply keyboard the citizen sees now."""
        return (await self.client.history(self.id)).keyboard_texts
