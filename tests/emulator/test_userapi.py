"""The user side: acting as users, reading chats, steering the emulator."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient, EmulatorError
from tests.emulator.conftest import ALICE, CAMILLE, eventually

PNG_2x3 = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    + (2).to_bytes(4, "big")
    + (3).to_bytes(4, "big")
    + b"\x08\x02\x00\x00\x00"
)


def choice_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Yes", callback_data="answer:yes"),
                InlineKeyboardButton(text="No", callback_data="answer:no"),
            ],
            [InlineKeyboardButton(text="Website", url="https://city.example")],
        ]
    )


async def test_personas_are_listed(client: EmulatorClient) -> None:
    personas = await client.personas()
    assert [p.language_code for p in personas] == ["en", "fr", "en", "en"]
    assert personas[1].label == "Citoyenne (français)"


async def test_text_and_command_updates(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    sent = await client.send_text(ALICE, "/report@citizenbot_local_bot now")
    (update,) = await bot.get_updates()
    assert update.update_id == sent.update_id
    message = update.message
    assert message is not None
    assert message.from_user is not None
    assert message.from_user.first_name == "Alice"
    assert message.from_user.language_code == "en"
    assert message.entities is not None
    assert (message.entities[0].type, message.entities[0].length) == ("bot_command", 28)


async def test_profile_given_per_call_and_remembered(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    await client.set_user(555, first_name="Zoé", language_code="fr")
    await client.send_text(555, "salut")
    await client.send_text(555, "encore", user={"last_name": "Durand", "username": "zoe_d"})
    updates = await bot.get_updates()
    users = [u.message.from_user for u in updates if u.message and u.message.from_user]
    assert [(u.first_name, u.last_name, u.language_code) for u in users] == [
        ("Zoé", None, "fr"),
        ("Zoé", "Durand", "fr"),
    ]
    chat = await bot.get_chat(555)
    assert chat.username == "zoe_d"


async def test_location_photo_document_sticker_voice_contact(
    bot: Bot, client: EmulatorClient
) -> None:
    await bot.get_me()
    await client.send_location(ALICE, 50.8467, 4.3525)
    photo = await client.send_photo(ALICE, PNG_2x3, file_name="hole.png", caption="Pothole #road")
    await client.send_document(ALICE, b"%PDF-1.4", file_name="letter.pdf")
    await client.send_sticker(ALICE, "🎉")
    await client.send_voice(ALICE, duration=4)
    await client.send_contact(ALICE, "+32 2 123 45 67")
    messages = [u.message for u in await bot.get_updates() if u.message]
    location, photo_message, document, sticker, voice, contact = messages
    assert location.location is not None
    assert location.location.longitude == pytest.approx(4.3525)
    assert photo_message.photo is not None
    assert (photo_message.photo[-1].width, photo_message.photo[-1].height) == (2, 3)
    assert photo_message.caption == "Pothole #road"
    assert photo_message.caption_entities is not None
    assert photo_message.caption_entities[0].type == "hashtag"
    downloaded = await bot.download(photo_message.photo[-1].file_id)
    assert downloaded is not None
    assert downloaded.read() == PNG_2x3
    assert await client.download_file(photo_message.photo[-1].file_id) == PNG_2x3
    assert photo.message_id == photo_message.message_id
    assert document.document is not None
    assert document.document.mime_type == "application/pdf"
    assert sticker.sticker is not None
    assert sticker.sticker.emoji == "🎉"
    assert voice.voice is not None
    assert voice.voice.duration == 4
    assert contact.contact is not None
    assert contact.contact.user_id == ALICE
    assert contact.contact.first_name == "Alice"


async def test_photo_as_base64_json(base_url: str, bot: Bot) -> None:
    await bot.get_me()
    async with aiohttp.ClientSession() as http:
        body = {"photo": {"data": "iVBORw0KGgo=", "file_name": "x.png"}, "caption": "b64"}
        async with http.post(f"{base_url}/emulator/chats/{ALICE}/messages", json=body) as response:
            assert response.status == 200
            message = (await response.json())["message"]
    assert message["caption"] == "b64"
    assert len(message["photo"]) >= 1


async def test_user_edit_produces_edited_message(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    sent = await client.send_text(ALICE, "Potholle on Main St")
    await client.edit_message(ALICE, sent.message_id, text="Pothole on Main St")
    kinds = [(u.event_type, (u.message or u.edited_message).text) for u in await bot.get_updates()]  # type: ignore[union-attr]
    assert kinds == [("message", "Potholle on Main St"), ("edited_message", "Pothole on Main St")]


async def test_button_press_by_data_and_by_text(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    offered = await bot.send_message(alice_chat, "Is it fixed?", reply_markup=choice_keyboard())
    by_data = await client.press_button(alice_chat, offered.message_id, data="answer:yes")
    by_text = await client.press_button(alice_chat, offered.message_id, text="No")
    queries = [u.callback_query for u in await bot.get_updates() if u.callback_query]
    assert [q.id for q in queries] == [by_data.callback_query_id, by_text.callback_query_id]
    assert [q.data for q in queries] == ["answer:yes", "answer:no"]
    query = queries[0]
    assert query.from_user.id == ALICE
    assert query.chat_instance
    assert query.message is not None
    assert query.message.message_id == offered.message_id


async def test_pressing_a_button_that_is_not_there_is_refused(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    offered = await bot.send_message(alice_chat, "Is it fixed?", reply_markup=choice_keyboard())
    with pytest.raises(EmulatorError, match="has no button with callback_data 'answer:maybe'"):
        await client.press_button(alice_chat, offered.message_id, data="answer:maybe")
    with pytest.raises(EmulatorError, match="not a callback button"):
        await client.press_button(alice_chat, offered.message_id, text="Website")
    with pytest.raises(EmulatorError, match="has no button"):
        await client.press_button(alice_chat, 1, text="Yes")  # Alice's own /start


async def test_callback_answer_is_visible_and_awaitable(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    offered = await bot.send_message(alice_chat, "Is it fixed?", reply_markup=choice_keyboard())

    async def answer_when_pressed() -> None:
        while True:
            for update in await bot.get_updates(timeout=5, allowed_updates=["callback_query"]):
                if update.callback_query:
                    await update.callback_query.answer("Thanks!", show_alert=True)
                    return

    answering = asyncio.create_task(answer_when_pressed())
    press = await client.press_button(
        alice_chat, offered.message_id, data="answer:yes", wait_answer=5
    )
    await answering
    assert press.answer is not None
    assert (press.answer.text, press.answer.show_alert, press.answer.data) == (
        "Thanks!",
        True,
        "answer:yes",
    )
    history = await client.history(alice_chat)
    assert [a.text for a in history.callback_answers] == ["Thanks!"]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(press.callback_query_id)


async def test_block_and_unblock_emit_my_chat_member(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await bot.get_updates(offset=-1)
    (last,) = await bot.get_updates()
    await client.block(alice_chat)
    await client.unblock(alice_chat)
    updates = await bot.get_updates(offset=last.update_id + 1)
    statuses = [
        (u.my_chat_member.old_chat_member.status, u.my_chat_member.new_chat_member.status)
        for u in updates
        if u.my_chat_member
    ]
    assert statuses == [("member", "kicked"), ("kicked", "member")]


async def test_writing_to_a_blocked_bot_unblocks_it(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await client.block(alice_chat)
    await client.send_text(alice_chat, "/start")
    assert not (await client.history(alice_chat)).blocked
    await bot.send_message(alice_chat, "welcome back")


async def test_history_after_since_and_long_poll(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    first = await bot.send_message(alice_chat, "first")
    snapshot = await client.history(alice_chat)
    waiting = asyncio.create_task(client.history(alice_chat, since=snapshot.revision, wait=10))
    await bot.edit_message_text("first, edited", chat_id=alice_chat, message_id=first.message_id)
    async with asyncio.timeout(2):
        changed = await waiting
    assert [(m.message_id, m.text, m.edited) for m in changed.messages] == [
        (first.message_id, "first, edited", True)
    ]
    newer = await client.history(alice_chat, after=first.message_id)
    assert newer.messages == []
    assert [m.describe() for m in snapshot.messages] == ["#1 user '/start'", "#2 bot 'first'"]


async def test_wait_for_bot_message_sees_edits_and_times_out_clearly(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    sent = await bot.send_message(alice_chat, "Loading…")

    async def edit_soon() -> None:
        await bot.edit_message_text("Done", chat_id=alice_chat, message_id=sent.message_id)

    editing = asyncio.create_task(edit_soon())
    done = await client.wait_for_bot_message(
        alice_chat, after=1, predicate=lambda m: m.text == "Done", timeout=3
    )
    await editing
    assert done.message_id == sent.message_id
    with pytest.raises(TimeoutError) as raised:
        await client.wait_for_bot_message(
            alice_chat,
            after=1,
            predicate=lambda m: "Thanks" in m.content,
            timeout=0.2,
            description="a thank-you message",
        )
    assert str(raised.value) == (
        "waited 0.2s for a thank-you message in chat 100001 after message 1; "
        "bot messages seen: #2 bot 'Done' [edited]"
    )


async def test_wait_until_a_condition(bot: Bot, alice_chat: int, client: EmulatorClient) -> None:
    sent = await bot.send_message(alice_chat, "bye")
    deleting = asyncio.create_task(bot.delete_message(alice_chat, sent.message_id))
    history = await client.wait_until(
        alice_chat, lambda h: any(m.deleted for m in h.messages), timeout=3
    )
    await deleting
    assert history.messages[-1].deleted


async def test_call_log_over_http(bot: Bot, alice_chat: int, client: EmulatorClient) -> None:
    await client.clear_calls()
    await bot.send_message(alice_chat, "logged")
    (call,) = await client.calls(method="sendmessage", chat_id=alice_chat)
    assert (call.method, call.status, call.ok, call.message_id) == ("sendMessage", 200, True, 2)
    assert call.params == {"chat_id": str(ALICE), "text": "logged"}
    waited = asyncio.create_task(client.wait_for_call("deleteMessage", since=call.seq, timeout=3))
    await bot.delete_message(alice_chat, 2)
    assert (await waited).ok


async def test_reset_forgets_everything(
    bot: Bot, alice_chat: int, client: EmulatorClient, emulator: Emulator
) -> None:
    await bot.send_message(alice_chat, "before")
    await client.reset()
    assert await client.calls() == []
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(alice_chat, "after")
    assert [p.user_id for p in emulator.personas] == [ALICE, CAMILLE, 100003, 100004]


async def test_messages_before_the_bot_connects_are_kept(
    base_url: str, client: EmulatorClient
) -> None:
    await client.send_text(CAMILLE, "hello early")
    from tests.emulator.conftest import make_bot

    late = make_bot(base_url)
    try:
        updates = await late.get_updates()
        assert [u.message.text for u in updates if u.message] == ["hello early"]
        assert (await client.bot_info()).connected
    finally:
        await late.session.close()


async def test_bot_info_reports_the_mode(
    bot: Bot, client: EmulatorClient, emulator: Emulator
) -> None:
    await bot.get_me()
    assert (await client.bot_info()).mode == "idle"
    polling = asyncio.create_task(bot.get_updates(timeout=5))
    await eventually(lambda: emulator.hub.world_for_user().poll is not None)
    assert (await client.bot_info()).mode == "polling"
    await client.send_text(ALICE, "wake up")
    await polling


async def test_bad_requests_to_the_user_api(client: EmulatorClient, base_url: str) -> None:
    with pytest.raises(EmulatorError, match="exactly one of"):
        await client._request("POST", f"/emulator/chats/{ALICE}/messages", json_body={})
    with pytest.raises(EmulatorError, match=r"group message needs from\.id"):
        await client.send_text(-100, "hi")
    with pytest.raises(EmulatorError, match="latitude or longitude out of range"):
        await client.send_location(ALICE, 123, 0)
    with pytest.raises(EmulatorError, match="no message 9"):
        await client.press_button(ALICE, 9, data="x")


async def test_playground_is_served(base_url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/") as response:
            assert response.status == 200
            page = await response.text()
            assert "<title>" in page
            assert "/playground/app.js" in page
        for asset in ("app.js", "style.css"):
            async with http.get(f"{base_url}/playground/{asset}") as response:
                assert response.status == 200, asset
