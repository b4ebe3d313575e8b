"""Translation catalogues: complete in every language, values escaped."""

from __future__ import annotations

import re
from collections import Counter
from string import Formatter

import pytest

from bot.config import SUPPORTED_LANGUAGES
from bot.emulator.errors import BotApiError
from bot.emulator.textparse import parse_html
from bot.i18n import LOCALES, Markup, Translator


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("en")


def test_every_language_has_every_key(translator: Translator) -> None:
    reference = translator.keys("en")
    for language in SUPPORTED_LANGUAGES:
        assert translator.keys(language) == reference, language


def test_placeholders_match_across_languages(translator: Translator) -> None:
    for key in translator.keys("en"):
        names = {
            language: frozenset(re.findall(r"{(\w+)}", translator.template(language, key)))
            for language in SUPPORTED_LANGUAGES
        }
        assert len(set(names.values())) == 1, (key, names)


def test_values_are_escaped_but_markup_in_the_template_is_kept(translator: Translator) -> None:
    text = translator.text("en", "start.welcome", name="<b>Eve & co</b>")
    assert "&lt;b&gt;Eve &amp; co&lt;/b&gt;" in text
    assert "<b>report a problem</b>" in text


@pytest.mark.parametrize(
    ("code", "expected"),
    [("fr", "fr"), ("fr-CA", "fr"), ("en-GB", "en"), ("de", "en"), (None, "en")],
)
def test_telegram_language_codes_map_to_supported_languages(
    translator: Translator, code: str | None, expected: str
) -> None:
    assert translator.resolve_language(code) == expected


def test_a_rendered_text_placed_in_another_is_not_escaped_twice() -> None:
    translator = Translator.load("en")
    inner = translator.text("en", "broadcast.segment.area", value="Lac & Gare")
    assert "Lac &amp; Gare" in inner
    outer = translator.text("en", "broadcast.ask_content", segment=Markup(inner), count=3)
    assert "Lac &amp; Gare" in outer and "&amp;amp;" not in outer
    # Plain values are still escaped.
    assert "&lt;b&gt;" in translator.text("en", "broadcast.ask_content", segment="<b>", count=3)


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_no_key_is_defined_twice(language: str) -> None:
    """A second definition would silently replace the first one's text."""
    catalogue = LOCALES / language / "LC_MESSAGES" / "messages.po"
    keys = re.findall(r'^msgid "(.+)"$', catalogue.read_text(encoding="utf-8"), re.MULTILINE)
    assert [key for key, count in Counter(keys).items() if count > 1] == []


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_every_text_is_valid_telegram_html(translator: Translator, language: str) -> None:
    """Telegram refuses a message whose HTML it cannot parse (a bare ``<code>``, say)."""
    refused = []
    for key in sorted(translator.keys(language)):
        template = translator.template(language, key)
        names = {field for _, field, _, _ in Formatter().parse(template) if field}
        text = translator.text(language, key, **dict.fromkeys(names, "x"))
        try:
            parse_html(text)
        except BotApiError as error:
            refused.append(f"{key}: {error}")
    assert refused == []
