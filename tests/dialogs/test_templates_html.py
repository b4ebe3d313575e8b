"""Telegram HTML checks, escaping and templates."""

from __future__ import annotations

import pytest

from dialogs.html import check_html, escape, to_plain
from dialogs.templates import TemplateError, placeholders, render, shorten
from dialogs.texts import SystemText, TextBook, load_system_texts


@pytest.mark.parametrize(
    "text",
    [
        "plain",
        "<b>bold</b> and <i>it</i>",
        "<b><i>nested</i></b>",
        '<a href="https://example.org/?a=1&amp;b=2">link</a>',
        "1 &lt; 2 &amp;&amp; 3 &gt; 2 &#128512; &#x1F600; &quot;",
        '<span class="tg-spoiler">x</span><tg-spoiler>y</tg-spoiler>',
        "<blockquote expandable>q</blockquote>",
    ],
)
def test_valid_telegram_html(text: str) -> None:
    assert check_html(text) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<b>open", "tag <b> is never closed"),
        ("<b><i>x</b></i>", "closing tag </b> does not match an open tag"),
        ("a < b", "'<' at character 3 is not a tag; write &lt;"),
        ("a > b", "'>' at character 3 is not part of a tag; write &gt;"),
        ("Q&A", "'&' at character 2 is not an entity; write &amp;"),
        ("<script>x</script>", "tag <script> is not supported by Telegram"),
        ('<b class="x">x</b>', "tag <b> has attributes Telegram does not accept"),
        ("<a>x</a>", "tag <a> has attributes Telegram does not accept"),
    ],
)
def test_invalid_telegram_html(text: str, problem: str) -> None:
    assert check_html(text) == problem


def test_escape_and_back() -> None:
    raw = "<b>\"Fish\" & 'chips'</b>"
    assert escape(raw) == "&lt;b&gt;\"Fish\" &amp; 'chips'&lt;/b&gt;"
    assert check_html(escape(raw)) is None
    assert to_plain("<b>a &amp; b</b>") == "a & b"


def test_placeholders() -> None:
    assert placeholders("Hi {profile.first_name}, ref {results.r.reference} {{x}}") == [
        "profile.first_name",
        "results.r.reference",
    ]
    with pytest.raises(TemplateError, match=r"unmatched '\{'"):
        placeholders("oops { here")
    with pytest.raises(TemplateError, match="is not a name"):
        placeholders("{answers.x + 1}")


def test_render_escapes_values_not_the_template() -> None:
    values = {"answers.d": "<script>alert('x')</script> & co"}
    text = render("<b>You said:</b> {answers.d} {{literal}}", values.__getitem__)
    assert text == "<b>You said:</b> &lt;script&gt;alert('x')&lt;/script&gt; &amp; co {literal}"
    assert check_html(text) is None


def test_render_shortens_long_values() -> None:
    text = render("{answers.d}", lambda name: "x" * 50, limit=10)
    assert text == "x" * 9 + "…"
    assert shorten("short", 10) == "short"


def test_text_book_html_and_plain() -> None:
    texts = {"edit": {"en": "✏️ <b>{label}</b>"}}
    book = TextBook(texts, "fr", ("en",))
    assert book.html(SystemText.EDIT, label="A & B") == "✏️ <b>A &amp; B</b>"
    assert book.plain(SystemText.EDIT, label="A & B") == "✏️ A & B"


def test_text_book_formats_numbers_and_dates_per_language() -> None:
    texts = load_system_texts()
    assert TextBook(texts, "fr", ("en",)).number(3.5) == "3,5"
    assert TextBook(texts, "en", ("en",)).number(3.5) == "3.5"
    assert TextBook(texts, "xx", ("en",)).number(2) == "2"


def test_shipped_system_texts_are_complete_and_valid_html() -> None:
    texts = load_system_texts()
    for key in SystemText:
        for language in ("en", "fr"):
            value = texts[key.value][language]
            assert value, (key, language)
            assert check_html(value) is None, (key, language)
            placeholders(value)
