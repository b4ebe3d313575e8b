"""Parse modes and entities, checked against what Telegram (TDLib) produces."""

from __future__ import annotations

import pytest

from bot.emulator.errors import BotApiError
from bot.emulator.media import image_size
from bot.emulator.textparse import (
    detect_entities,
    format_text,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)


def entity(kind: str, offset: int, length: int, **extra: object) -> dict[str, object]:
    return {"type": kind, "offset": offset, "length": length, **extra}


def test_html_nested_tags_become_entities_over_plain_text() -> None:
    parsed = parse_html(
        "<b>bold <i>both</i></b> &lt;3 &amp; &#x1F600; <a href='https://e.org'>x</a>"
    )
    assert parsed.text == "bold both <3 & 😀 x"
    assert parsed.entities == [
        entity("bold", 0, 9),
        entity("italic", 5, 4),
        entity("text_link", 18, 1, url="https://e.org"),
    ]


def test_html_offsets_count_utf16_code_units() -> None:
    parsed = parse_html("😀 <b>x</b>")
    assert parsed.entities == [entity("bold", 3, 1)]
    assert utf16_len("😀") == 2


def test_html_pre_with_code_language_is_one_entity() -> None:
    parsed = parse_html('<pre><code class="language-python">print(1)</code></pre>')
    assert parsed.entities == [entity("pre", 0, 8, language="python")]


def test_html_spoiler_blockquote_and_custom_emoji() -> None:
    parsed = parse_html(
        '<span class="tg-spoiler">a</span><tg-spoiler>b</tg-spoiler>'
        "<blockquote expandable>c</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    kinds = [e["type"] for e in parsed.entities]
    assert kinds == ["spoiler", "spoiler", "expandable_blockquote", "custom_emoji"]


def test_html_unknown_named_entity_stays_literal() -> None:
    assert parse_html("a&nbsp;b").text == "a&nbsp;b"


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("é<b", "Unclosed start tag at byte offset 2"),
    ],
)
def test_html_errors_are_telegrams(html: str, error: str) -> None:
    with pytest.raises(BotApiError) as raised:
        parse_html(html)
    assert raised.value.error_code == 400
    assert raised.value.description == f"Bad Request: can't parse entities: {error}"


def test_markdown_v2_entities_and_escapes() -> None:
    parsed = parse_markdown_v2(r"*bold* _it_ __u__ ~s~ ||sp|| `c` [l](https://e.org) 1\.5")
    assert parsed.text == "bold it u s sp c l 1.5"
    assert [e["type"] for e in parsed.entities] == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "text_link",
    ]


def test_markdown_v2_reserved_character_must_be_escaped() -> None:
    with pytest.raises(BotApiError, match=r"Character '\.' is reserved"):
        parse_markdown_v2("Done.")


def test_markdown_v2_unclosed_entity() -> None:
    with pytest.raises(BotApiError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown_v2("*open")


def test_markdown_v2_pre_with_language_and_blockquote() -> None:
    parsed = parse_markdown_v2("```py\nx = 1\n```\n>quoted\n>more")
    assert parsed.entities[0] == entity("pre", 0, 6, language="py")
    assert parsed.entities[1]["type"] == "blockquote"
    assert parsed.text.endswith("quoted\nmore")


def test_legacy_markdown() -> None:
    parsed = parse_markdown("*b* _i_ `c` [l](https://e.org)")
    assert parsed.text == "b i c l"
    assert [e["type"] for e in parsed.entities] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(BotApiError, match="Can't find end of the entity"):
        parse_markdown("*open")


def test_format_text_trims_and_shifts_entities() -> None:
    formatted = format_text(
        "  <b>hi</b>  \n", parse_mode="HTML", entities=None, max_length=10, too_long="long"
    )
    assert formatted.text == "hi"
    assert formatted.entities == [entity("bold", 0, 2)]


def test_format_text_counts_length_after_parsing() -> None:
    text = "<b>" + "x" * 4096 + "</b>"
    assert format_text(text, parse_mode="HTML", entities=None, max_length=4096, too_long="t").text
    with pytest.raises(BotApiError, match="message is too long"):
        format_text(
            "x" * 4097,
            parse_mode=None,
            entities=None,
            max_length=4096,
            too_long="message is too long",
        )


def test_explicit_entities_win_over_parse_mode_and_are_clipped() -> None:
    formatted = format_text(
        "a &amp; b",
        parse_mode="HTML",
        entities=[{"type": "bold", "offset": 0, "length": 99}],
        max_length=100,
        too_long="t",
    )
    assert formatted.text == "a &amp; b"
    assert formatted.entities == [entity("bold", 0, 9)]


def test_links_and_commands_in_bot_texts_get_entities_outside_code() -> None:
    formatted = format_text(
        "See /help or https://city.example <code>/not_here</code>",
        parse_mode="HTML",
        entities=None,
        max_length=100,
        too_long="t",
    )
    assert [e["type"] for e in formatted.entities] == ["bot_command", "url", "code"]


def test_unsupported_parse_mode() -> None:
    with pytest.raises(BotApiError, match="unsupported parse_mode"):
        format_text("x", parse_mode="BBCode", entities=None, max_length=10, too_long="t")


def test_detect_entities_like_telegram_clients() -> None:
    text = (
        "/report@citizenbot_local_bot see https://city.example/a?b=1, "
        "mail a.b@city.org #potholes @alice_w"
    )
    kinds = [
        (e["type"], text[e["offset"] : e["offset"] + e["length"]]) for e in detect_entities(text)
    ]
    assert kinds == [
        ("bot_command", "/report@citizenbot_local_bot"),
        ("url", "https://city.example/a?b=1"),
        ("email", "a.b@city.org"),
        ("hashtag", "#potholes"),
        ("mention", "@alice_w"),
    ]


def test_image_size_reads_png_jpeg_and_gif_headers() -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") + (480).to_bytes(4, "big")
    )
    gif = b"GIF89a" + (30).to_bytes(2, "little") + (20).to_bytes(2, "little")
    jpeg = (
        b"\xff\xd8"
        + b"\xff\xe0\x00\x10"
        + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\xff\xc0\x00\x11\x08"
        + (300).to_bytes(2, "big")
        + (400).to_bytes(2, "big")
        + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    assert image_size(png) == (640, 480)
    assert image_size(gif) == (30, 20)
    assert image_size(jpeg) == (400, 300)
    assert image_size(b"not an image") is None
