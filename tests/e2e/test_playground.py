"""`citizenbot run` without BOT_TOKEN: the emulator in-process and the playground page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from bot.emulator.client import CallLogEntry, EmulatorClient
from tests.support.botprocess import BotProcess, free_port

pytestmark = pytest.mark.e2e


def scope_chat(call: CallLogEntry) -> object:
    """The chat a setMyCommands call is for (None: every chat)."""
    scope = call.params.get("scope")
    if isinstance(scope, str):
        scope = json.loads(scope)
    return scope.get("chat_id") if isinstance(scope, dict) else None


async def test_run_without_a_token_serves_a_playground_that_answers_start(
    tmp_path: Path,
) -> None:
    # No DATABASE_URL either: the default SQLite file in the working directory.
    process = BotProcess({"WEB_PORT": str(free_port())}, tmp_path)
    await process.start()
    try:
        line = await process.wait_for_output("playground at")
        match = re.search(r"http://[\d.:]+/", line)
        assert match, line
        address = match.group(0).rstrip("/")
        async with aiohttp.ClientSession() as http, http.get(address + "/") as response:
            assert response.status == 200
            assert "<html" in (await response.text()).lower()
        async with EmulatorClient(address) as client:
            personas = await client.personas()
            citizen = next(p for p in personas if p.language_code == "fr")
            sent = await client.send_text(
                citizen.user_id,
                "/start",
                user={
                    "id": citizen.user_id,
                    "first_name": citizen.first_name,
                    "language_code": "fr",
                },
            )
            reply = await client.wait_for_bot_message(citizen.user_id, after=sent.message_id)
            assert f"Bonjour {citizen.first_name}" in reply.content

            # The staff personas are staff from the start, with ADMIN_IDS unset, and
            # their command menus list their commands before they have written.
            for label, command, answer in (
                ("Service manager", "/reports", "No report matches"),
                ("Administrator", "/audit", "Nothing recorded yet"),
            ):
                persona = next(p for p in personas if p.label == label)
                await client.wait_for_call(
                    "setMyCommands",
                    predicate=lambda call, chat=persona.user_id: scope_chat(call) == chat,
                )
                listed = [c["command"] for c in await client.commands(persona.user_id)]
                assert command.lstrip("/") in listed
                user = {"id": persona.user_id, "first_name": persona.first_name}
                sent = await client.send_text(persona.user_id, command, user=user)
                reply = await client.wait_for_bot_message(persona.user_id, after=sent.message_id)
                assert answer in reply.content
        assert (tmp_path / "citizenbot.db").exists()
    finally:
        assert await process.stop() == 0
