"""Wire compatibility: a real aiogram 3 Bot against the emulator."""

from __future__ import annotations

import aiohttp
import pytest
from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
)
from aiohttp.test_utils import TestServer

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import ALICE, BOT_ID, CAMILLE, TOKEN, make_bot

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
PNG_640x480 = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    + (640).to_bytes(4, "big")
    + (480).to_bytes(4, "big")
    + b"\x08\x02\x00\x00\x00rest-of-the-image"
)


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=data) for text, data in row]
            for row in rows
        ]
    )


async def test_get_me_describes_the_bot(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username) == (BOT_ID, True, "citizenbot_local_bot")


async def test_send_message_returns_a_real_message(bot: Bot, alice_chat: int) -> None:
    sent = await bot.send_message(
        alice_chat,
        "<b>Hello</b> &amp; welcome",
        parse_mode="HTML",
        reply_markup=keyboard([("Report", "report"), ("Rate", "rate")]),
    )
    assert sent.text == "Hello & welcome"
    assert sent.from_user is not None
    assert sent.from_user.id == BOT_ID
    assert sent.chat.id == ALICE
    assert sent.chat.type == "private"
    assert sent.entities is not None
    assert sent.entities[0].type == "bold"
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][1].callback_data == "rate"
    assert sent.message_id == 2  # after Alice's /start


async def test_send_message_replies_to_a_message(bot: Bot, alice_chat: int) -> None:
    sent = await bot.send_message(
        alice_chat, "Got it", reply_parameters=ReplyParameters(message_id=1)
    )
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "/start"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(alice_chat, "x", reply_parameters=ReplyParameters(message_id=99))


@pytest.mark.parametrize(
    ("text", "kwargs", "description"),
    [
        ("", {}, "Bad Request: message text is empty"),
        ("   ", {}, "Bad Request: message text is empty"),
        ("<b></b>", {"parse_mode": "HTML"}, "Bad Request: message text is empty"),
        ("x" * 4097, {}, "Bad Request: message is too long"),
        (
            "1 < 2",
            {"parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unsupported start tag",
        ),
        (
            "<b>x</i>",
            {"parse_mode": "HTML"},
            "Bad Request: can't parse entities: Unmatched end tag",
        ),
        ("<blink>x</blink>", {"parse_mode": "HTML"}, 'Unsupported start tag "blink"'),
    ],
)
async def test_send_message_validation(
    bot: Bot, alice_chat: int, text: str, kwargs: dict[str, str], description: str
) -> None:
    with pytest.raises(TelegramBadRequest) as raised:
        await bot.send_message(alice_chat, text, **kwargs)  # type: ignore[arg-type]
    assert description in raised.value.message


async def test_message_of_4096_characters_after_parsing_is_accepted(
    bot: Bot, alice_chat: int
) -> None:
    sent = await bot.send_message(alice_chat, "<i>" + "é" * 4096 + "</i>", parse_mode="HTML")
    assert sent.text is not None
    assert len(sent.text) == 4096


@pytest.mark.parametrize("data", ["", "x" * 65, "é" * 33])
async def test_callback_data_over_64_bytes_or_empty_is_refused(
    bot: Bot, alice_chat: int, data: str
) -> None:
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(alice_chat, "Pick", reply_markup=keyboard([("A", data)]))


async def test_unknown_chat_and_blocked_user(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(CAMILLE, "hello")
    await client.block(ALICE)
    with pytest.raises(TelegramForbiddenError, match="Forbidden: bot was blocked by the user"):
        await bot.send_message(alice_chat, "still there?")
    await client.unblock(ALICE)
    await bot.send_message(alice_chat, "welcome back")


async def test_edit_text_markup_and_not_modified(bot: Bot, alice_chat: int) -> None:
    sent = await bot.send_message(alice_chat, "Step 1", reply_markup=keyboard([("Next", "n")]))
    edited = await bot.edit_message_text(
        "Step <b>2</b>",
        chat_id=alice_chat,
        message_id=sent.message_id,
        parse_mode="HTML",
        reply_markup=keyboard([("Next", "n")]),
    )
    assert not isinstance(edited, bool)
    assert edited.text == "Step 2"
    assert edited.edit_date is not None
    with pytest.raises(TelegramBadRequest) as raised:
        await bot.edit_message_text(
            "Step <b>2</b>",
            chat_id=alice_chat,
            message_id=sent.message_id,
            parse_mode="HTML",
            reply_markup=keyboard([("Next", "n")]),
        )
    assert raised.value.message == NOT_MODIFIED
    stripped = await bot.edit_message_reply_markup(chat_id=alice_chat, message_id=sent.message_id)
    assert not isinstance(stripped, bool)
    assert stripped.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=alice_chat, message_id=sent.message_id)


async def test_edit_errors(bot: Bot, alice_chat: int) -> None:
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice_chat, message_id=404)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=alice_chat, message_id=1)
    text_message = await bot.send_message(alice_chat, "plain")
    with pytest.raises(TelegramBadRequest, match="there is no caption in the message to edit"):
        await bot.edit_message_caption(
            chat_id=alice_chat, message_id=text_message.message_id, caption="c"
        )


async def test_delete_message(bot: Bot, alice_chat: int, client: EmulatorClient) -> None:
    sent = await bot.send_message(alice_chat, "temporary")
    assert await bot.delete_message(alice_chat, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(alice_chat, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=alice_chat, message_id=sent.message_id)
    history = await client.history(alice_chat)
    assert [m.deleted for m in history.messages] == [False, True]


async def test_photo_upload_get_file_and_download(bot: Bot, alice_chat: int) -> None:
    sent = await bot.send_photo(
        alice_chat,
        BufferedInputFile(PNG_640x480, "chart.png"),
        caption="<i>Weekly</i> chart",
        parse_mode="HTML",
    )
    assert sent.photo is not None
    assert sent.caption == "Weekly chart"
    assert sent.caption_entities is not None
    assert sent.caption_entities[0].type == "italic"
    largest = sent.photo[-1]
    assert (largest.width, largest.height) == (640, 480)
    assert [size.width for size in sent.photo] == [90, 320, 640]
    file = await bot.get_file(largest.file_id)
    assert file.file_path is not None
    assert file.file_size == len(PNG_640x480)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded is not None
    assert downloaded.read() == PNG_640x480

    again = await bot.send_photo(alice_chat, largest.file_id)
    assert again.photo is not None
    assert again.photo[-1].file_id == largest.file_id


async def test_document_upload_and_reuse(bot: Bot, alice_chat: int) -> None:
    sent = await bot.send_document(
        alice_chat, BufferedInputFile(b"a,b\n1,2\n", "export.csv"), caption="Your data"
    )
    assert sent.document is not None
    assert (sent.document.file_name, sent.document.mime_type) == ("export.csv", "text/csv")
    downloaded = await bot.download(sent.document.file_id)
    assert downloaded is not None
    assert downloaded.read() == b"a,b\n1,2\n"
    with pytest.raises(TelegramBadRequest, match="can't use file of type Document as Photo"):
        await bot.send_photo(alice_chat, sent.document.file_id)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(alice_chat, "no-such-file-id")


async def test_caption_too_long(bot: Bot, alice_chat: int) -> None:
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(
            alice_chat, BufferedInputFile(PNG_640x480, "p.png"), caption="x" * 1025
        )


async def test_location_chat_action_and_get_chat(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    sent = await bot.send_location(alice_chat, latitude=50.8467, longitude=4.3525)
    assert sent.location is not None
    assert sent.location.latitude == pytest.approx(50.8467)
    assert await bot.send_chat_action(alice_chat, "typing") is True
    assert (await client.history(alice_chat)).chat_action == {
        "action": "typing",
        "until": pytest.approx((await client.history(alice_chat)).chat_action["until"]),  # type: ignore[index]
    }
    chat = await bot.get_chat(alice_chat)
    assert (chat.id, chat.first_name, chat.type) == (ALICE, "Alice", "private")


async def test_reply_keyboard_is_shown_to_the_user_not_in_the_message(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    markup = ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text="Share location", request_location=True)],
            [KeyboardButton(text="Skip")],
        ],
        one_time_keyboard=True,
    )
    sent = await bot.send_message(alice_chat, "Where?", reply_markup=markup)
    assert sent.reply_markup is None
    history = await client.history(alice_chat)
    assert history.keyboard_texts == ["Share location", "Skip"]
    assert history.keyboard is not None
    assert history.keyboard["keyboard"][0][0]["request_location"]
    await bot.send_message(alice_chat, "Thanks", reply_markup=ReplyKeyboardRemove())
    assert (await client.history(alice_chat)).keyboard is None


async def test_commands_by_scope_and_language(
    bot: Bot, alice_chat: int, client: EmulatorClient
) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start")])
    await bot.set_my_commands([BotCommand(command="aide", description="Aide")], language_code="fr")
    await bot.set_my_commands(
        [BotCommand(command="admin", description="Admin")],
        scope=BotCommandScopeChat(chat_id=alice_chat),
    )
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["aide"]
    assert [c["command"] for c in await client.commands(CAMILLE, language_code="fr")] == ["aide"]
    assert [c["command"] for c in await client.commands(ALICE)] == ["admin"]
    assert await bot.delete_my_commands(language_code="fr") is True
    assert await bot.get_my_commands(language_code="fr") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])


async def test_close_and_log_out(bot: Bot) -> None:
    assert await bot.close() is True
    assert await bot.log_out() is True


async def test_malformed_token_is_unauthorized(base_url: str) -> None:
    bad = make_bot(base_url, token="123456:short")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bad.get_me()
    finally:
        await bad.session.close()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{base_url}/botnot-a-token/getMe") as response,
    ):
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


async def test_unknown_method_is_not_found(bot: Bot) -> None:
    class Frobnicate(TelegramMethod[bool]):
        __returning__ = bool
        __api_method__ = "frobnicate"

    with pytest.raises(TelegramNotFound, match="Not Found"):
        await bot(Frobnicate())


async def test_every_encoding_and_case_insensitive_method_names(
    base_url: str, alice_chat: int
) -> None:
    url = f"{base_url}/bot{TOKEN}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/SENDMESSAGE", params={"chat_id": ALICE, "text": "query"}) as r:
            assert (await r.json())["result"]["text"] == "query"
        async with http.post(
            f"{url}/sendMessage", data={"chat_id": str(ALICE), "text": "form"}
        ) as r:
            assert (await r.json())["result"]["text"] == "form"
        body = {
            "chat_id": ALICE,
            "text": "json",
            "reply_markup": {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]},
        }
        async with http.post(f"{url}/sendmessage", json=body) as r:
            result = (await r.json())["result"]
            assert result["text"] == "json"
            assert result["reply_markup"]["inline_keyboard"][0][0]["text"] == "A"
        async with http.post(f"{url}/sendMessage", json={"chat_id": ALICE}) as r:
            assert r.status == 400
            assert await r.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }


async def test_a_second_token_for_the_same_bot_id_is_unauthorized(base_url: str, bot: Bot) -> None:
    await bot.get_me()
    other = make_bot(base_url, token="123456:another-secret-xyz")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await other.get_me()
    finally:
        await other.session.close()


async def test_two_bots_have_separate_worlds(base_url: str, bot: Bot, emulator: Emulator) -> None:
    await bot.get_me()
    second = make_bot(base_url, token="777:second-bot-token")
    try:
        me = await second.get_me()
        assert me.id == 777
        assert me.username == "bot777_bot"
        async with EmulatorClient(base_url, bot_id=777) as client:
            await client.send_text(ALICE, "hi second")
        updates = await second.get_updates()
        assert [u.message.text for u in updates if u.message] == ["hi second"]
        assert await bot.get_updates() == []
    finally:
        await second.session.close()


async def test_call_log_counts_what_the_bot_sent(
    bot: Bot, alice_chat: int, emulator: Emulator
) -> None:
    await bot.send_message(alice_chat, "one")
    with pytest.raises(TelegramBadRequest):
        await bot.send_message(alice_chat, "")
    sends = emulator.calls("sendMessage")
    assert [(c.status, c.message_id, c.chat_id) for c in sends] == [
        (200, 2, ALICE),
        (400, None, ALICE),
    ]
    assert sends[0].params["text"] == "one"


async def test_parameters_of_the_wrong_shape_are_a_bad_request(
    base_url: str, alice_chat: int
) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"chat_id": ALICE, "text": "x", "reply_parameters": {"message_id": "first"}}
        async with http.post(f"{base_url}/bot{TOKEN}/sendMessage", json=body) as response:
            assert response.status == 400
            assert (await response.json())["description"].startswith("Bad Request: ")


async def test_personas_started_may_be_written_to_first() -> None:
    # The playground's personas have started the bot: after a restart of `make run`
    # the bot's database still knows them, and now so does the fresh emulator.
    emulator = Emulator(personas_started=True)
    server = TestServer(emulator.create_app(), host="127.0.0.1", port=0)
    await server.start_server()
    bot = make_bot(str(server.make_url("")).rstrip("/"))
    try:
        sent = await bot.send_message(CAMILLE, "Une carte pour vous")
        assert sent.chat.id == CAMILLE and sent.chat.first_name == "Camille"
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(CAMILLE + 1000, "nobody")  # not a persona
    finally:
        await bot.session.close()
        await server.close()
