"""A citizen who walks the report flow by reading what the bot last asked.

While the bot is killed and restarted under them, a citizen cannot assume their
last answer was taken: the bot commits an answer before it sends the next question,
so a kill in between loses the question (never the answer). Like a person who gets
no reply, the citizen then sends something neutral (a sticker): every step of the
flow answers it by asking its question again, which shows where the dialog stands.
Answers are only ever given to the question the bot actually showed, with its buttons.
Three nudges in a row at one question make the bot offer to try again (a person stuck
there would be helped the same way): the citizen then taps "Try again".
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

from bot.emulator.client import ChatHistory, ChatMessage
from tests.support.citizen import Citizen

NOT_STARTED, CATEGORY, PLACE, PHOTOS, DESCRIPTION, ANONYMOUS, CONFIRM, SENT = range(8)
# What each step's question (or its repetition after a wrong input) contains.
QUESTIONS: dict[int, str] = {
    CATEGORY: "What would you like to report",
    PLACE: "Where is it",
    PHOTOS: "Can you add a photo",
    DESCRIPTION: "describe the problem",
    ANONYMOUS: "stay anonymous",
    CONFIRM: "check your report",
    SENT: "Your report number is",
}
NOT_UNDERSTOOD = "did not understand"  # the answer outside any dialog
# The offer after three answers in a row a question could not take, and its button.
TROUBLE, TRY_AGAIN = "This question seems tricky", "🔁 Try again"


def step_shown(messages: Sequence[ChatMessage]) -> int:
    """The step of the newest question among the bot's messages (NOT_STARTED if none)."""
    for message in sorted(messages, key=lambda m: m.message_id, reverse=True):
        if not message.from_bot or message.deleted:
            continue
        for step in sorted(QUESTIONS, reverse=True):
            if QUESTIONS[step] in message.content:
                return step
    return NOT_STARTED


def asks_or_refuses(message: ChatMessage) -> bool:
    """A question of the flow, the offer to try one again, or the bot saying no dialog
    is open."""
    return (
        NOT_UNDERSTOOD in message.content
        or TROUBLE in message.content
        or any(q in message.content for q in QUESTIONS.values())
    )


class BotLife:
    """Whether the bot is up, and since when: patience only counts while it is."""

    def __init__(self) -> None:
        self.ready_at = math.inf

    def up(self) -> None:
        """The bot said it is running."""
        self.ready_at = time.monotonic()

    def down(self) -> None:
        """The bot is about to die."""
        self.ready_at = math.inf


class ReportingCitizen:
    """Drives one citizen through the report flow; counts every update it causes.

    ``patience``: seconds of the bot being up without an answer before the citizen
    nudges. While the bot is down the citizen just waits: its message is queued.
    """

    def __init__(
        self, citizen: Citizen, *, number: int, life: BotLife, patience: float = 4.0
    ) -> None:
        self.citizen = citizen
        self.number = number
        self.life = life
        self.patience = patience
        self.description = f"Streetlight out, case {number:03d} of the kill test"
        self.updates = 0  # messages sent and buttons pressed: each is one update
        self.nudges = 0
        self.tried_again = 0  # taps on "Try again" (counted in nudges too)
        self.known = NOT_STARTED
        self.confirmation_lost = False

    async def step(self) -> int:
        """The step the bot last asked about."""
        history: ChatHistory = await self.citizen.client.history(self.citizen.id)
        shown = step_shown(history.messages)
        if self.known == SENT or (self.known == CONFIRM and self.confirmation_lost):
            return SENT
        return shown

    async def advance(self, target: int) -> None:
        """Answer question after question until the bot asks ``target`` (or the report is sent)."""
        while (current := await self.step()) < target:
            self.known = current
            asked = time.monotonic()
            try:
                await self.answer(current, timeout=1.0)
            except TimeoutError:
                if not await self.wait_patiently(asked, lambda h: step_shown(h.messages) > current):
                    await self.nudge()

    async def wait_patiently(self, since: float, condition: Callable[[ChatHistory], bool]) -> bool:
        """Wait for ``condition`` on the chat until the bot was up ``patience`` seconds
        after ``since`` without it; False then."""
        client = self.citizen.client
        while True:
            idle_from = max(since, self.life.ready_at)
            remaining = self.patience - (time.monotonic() - idle_from)
            if remaining <= 0:
                return False
            try:
                await client.wait_until(self.citizen.id, condition, timeout=min(remaining, 1.0))
            except TimeoutError:
                continue
            return True

    async def answer(self, step: int, *, timeout: float) -> None:  # noqa: ASYNC109
        """Give the answer ``step`` asks for; wait for the next question."""
        citizen = self.citizen
        expect = QUESTIONS[step + 1]
        self.updates += 1
        if step == NOT_STARTED:
            await citizen.send("📣 Report an issue", expect=expect, timeout=timeout)
        elif step == CATEGORY:
            await citizen.tap("💡 Street lighting", expect=expect, timeout=timeout)
        elif step == PLACE:
            await citizen.send(f"{self.number} Rue Haute", expect=expect, timeout=timeout)
        elif step == PHOTOS:
            await citizen.send("Skip ➡️", expect=expect, timeout=timeout)
        elif step == DESCRIPTION:
            await citizen.send(self.description, expect=expect, timeout=timeout)
        elif step == ANONYMOUS:
            await citizen.tap("No", expect=expect, timeout=timeout)
        elif step == CONFIRM:
            await citizen.tap("✅ Send the report", expect=expect, timeout=timeout)
        else:
            raise AssertionError(f"nothing to answer at step {step}")
        self.known = step + 1

    async def nudge(self) -> None:
        """No answer came: send a sticker until the bot shows where the dialog stands
        (tapping "Try again" when the bot offers it)."""
        client = self.citizen.client
        offer: ChatMessage | None = None
        while True:
            self.updates += 1
            self.nudges += 1
            if offer is None:
                sent = await client.send_sticker(self.citizen.id, user=self.citizen.user)
                after = sent.message_id
            else:
                self.tried_again += 1
                after = (await client.history(self.citizen.id)).messages[-1].message_id
                await client.press_button(self.citizen.id, offer.message_id, text=TRY_AGAIN)
            replies: list[ChatMessage] = []

            def answered(
                history: ChatHistory,
                after: int = after,
                replies: list[ChatMessage] = replies,
            ) -> bool:
                replies[:] = [
                    m for m in history.bot_messages if m.message_id > after and asks_or_refuses(m)
                ]
                return bool(replies)

            if not await self.wait_patiently(time.monotonic(), answered):
                offer = None  # the tap, if any, may not have been taken: nudge again
                continue
            reply = replies[-1]  # the newest shows where the dialog stands
            if TROUBLE in reply.content:
                offer = reply
                continue
            if NOT_UNDERSTOOD in reply.content:
                history = await client.history(self.citizen.id)
                if step_shown(history.messages) == SENT:
                    return  # the confirmation came late, but it came
                # No dialog is open: only the confirmation can have closed it.
                if self.known != CONFIRM:
                    raise AssertionError(
                        f"citizen {self.number}: the dialog closed at step {self.known}"
                    )
                self.confirmation_lost = True
            return


async def advance_all(
    citizens: Sequence[ReportingCitizen], targets: Sequence[int], *, concurrency: int = 50
) -> None:
    """Advance every citizen to its target step, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(citizen: ReportingCitizen, target: int) -> None:
        async with gate:
            await citizen.advance(target)

    await asyncio.gather(*(one(c, t) for c, t in zip(citizens, targets, strict=True)))
