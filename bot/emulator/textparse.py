"""Formatted text as Telegram understands it: parse modes, entities, limits.

Telegram stores a message as plain text plus entities whose offsets and lengths
count UTF-16 code units, so this module does too. The HTML and MarkdownV2 parsers
follow TDLib's (the server's) rules and error messages closely enough that a bot
which passes here passes against the real Bot API, and one that forgets to escape
citizen text fails here the way it would fail in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.errors import BotApiError, bad_request

Entity = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)

# TDLib trims these from both ends of every message and caption.
_TRIMMED = " \t\n\r\v\f\u00a0"


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def utf16_slice(text: str, offset: int, length: int) -> str:
    """The part of `text` an entity covers."""
    raw = text.encode("utf-16-le")
    return raw[offset * 2 : (offset + length) * 2].decode("utf-16-le", errors="replace")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _entities_error(reason: str) -> BotApiError:
    return bad_request(f"can't parse entities: {reason}")


@dataclass(slots=True)
class FormattedText:
    """Plain text plus entities, as a Message stores it."""

    text: str
    entities: list[Entity] = field(default_factory=list)


class _Builder:
    """Accumulates output text while tracking its UTF-16 length."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offset = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.offset += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _sorted(entities: list[Entity]) -> list[Entity]:
    return sorted(
        (e for e in entities if e["length"] > 0), key=lambda e: (e["offset"], -e["length"])
    )


# --- HTML --------------------------------------------------------------------------

_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
}
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY_RE = re.compile(r"&(?:#[xX]([0-9a-fA-F]{1,8})|#([0-9]{1,10})|([a-zA-Z]{1,10}));")


def _decode_html_entity(src: str, index: int) -> tuple[str, int] | None:
    match = _HTML_ENTITY_RE.match(src, index)
    if match is None:
        return None
    hex_code, dec_code, name = match.groups()
    if name is not None:
        decoded = _NAMED_HTML_ENTITIES.get(name)
        return None if decoded is None else (decoded, match.end() - index)
    code = int(hex_code, 16) if hex_code is not None else int(dec_code)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end() - index


def _decode_html_attribute(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&" and (decoded := _decode_html_entity(value, i)) is not None:
            out.append(decoded[0])
            i += decoded[1]
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


@dataclass(slots=True)
class _OpenTag:
    name: str
    offset: int
    byte_offset: int
    attributes: dict[str, str]
    language: str | None = None


def _parse_html_attributes(
    src: str, i: int, tag: str, begin_byte: int
) -> tuple[dict[str, str], int]:
    """Parse attributes up to and including '>'; return them and the next index."""
    attributes: dict[str, str] = {}
    n = len(src)
    while True:
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise _entities_error(f"Unclosed start tag at byte offset {begin_byte}")
        if src[i] == ">":
            return attributes, i + 1
        name_start = i
        while i < n and not src[i].isspace() and src[i] not in "=>":
            i += 1
        name = src[name_start:i].lower()
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise _entities_error(f"Unclosed start tag at byte offset {begin_byte}")
        if src[i] != "=":
            # Valueless attributes such as `expandable` on a blockquote.
            attributes[name] = ""
            continue
        i += 1
        while i < n and src[i].isspace():
            i += 1
        if i >= n:
            raise _entities_error(f"Unclosed start tag at byte offset {begin_byte}")
        if src[i] in "\"'":
            quote = src[i]
            end = src.find(quote, i + 1)
            if end < 0:
                raise _entities_error(f'Unclosed start tag "{tag}" at byte offset {begin_byte}')
            value = src[i + 1 : end]
            i = end + 1
        else:
            value_start = i
            while i < n and not src[i].isspace() and src[i] != ">":
                i += 1
            value = src[value_start:i]
        attributes[name] = _decode_html_attribute(value)


def _html_entity_for(tag: _OpenTag, end_offset: int) -> Entity | None:
    length = end_offset - tag.offset
    kind = _HTML_ENTITY_TYPES[tag.name]
    entity: Entity = {"type": kind, "offset": tag.offset, "length": length}
    if tag.name == "a":
        url = tag.attributes.get("href", "").strip()
        if not url:
            return None
        entity["url"] = url
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attributes["emoji-id"]
    elif tag.name == "pre" and tag.language:
        entity["language"] = tag.language
    elif tag.name == "blockquote" and "expandable" in tag.attributes:
        entity["type"] = "expandable_blockquote"
    return entity


def parse_html(src: str) -> FormattedText:
    """Parse Telegram's HTML subset into text and entities (TDLib's rules)."""
    out = _Builder()
    stack: list[_OpenTag] = []
    entities: list[Entity] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "&" and (decoded := _decode_html_entity(src, i)) is not None:
            out.add(decoded[0])
            i += decoded[1]
            continue
        if char != "<":
            # Unknown entities such as "&nbsp;" stay literal, as in TDLib.
            out.add(char)
            i += 1
            continue
        begin_byte = _byte_offset(src, i)
        if i + 1 < n and src[i + 1] == "/":
            j = i + 2
            while j < n and not src[j].isspace() and src[j] != ">":
                j += 1
            name = src[i + 2 : j].lower()
            while j < n and src[j].isspace():
                j += 1
            if j >= n or src[j] != ">":
                raise _entities_error(f"Unclosed end tag at byte offset {begin_byte}")
            if not stack:
                raise _entities_error(f"Unexpected end tag at byte offset {begin_byte}")
            open_tag = stack[-1]
            if name != open_tag.name:
                raise _entities_error(
                    f"Unmatched end tag at byte offset {begin_byte}, "
                    f'expected "</{open_tag.name}>", found "</{name}>"'
                )
            stack.pop()
            if (
                open_tag.name == "code"
                and stack
                and stack[-1].name == "pre"
                and stack[-1].offset == open_tag.offset
                and open_tag.attributes.get("class", "").startswith("language-")
            ):
                # <pre><code class="language-x"> is one pre entity with a language.
                stack[-1].language = open_tag.attributes["class"][len("language-") :]
            elif (entity := _html_entity_for(open_tag, out.offset)) is not None:
                entities.append(entity)
            i = j + 1
            continue
        j = i + 1
        while j < n and not src[j].isspace() and src[j] != ">":
            j += 1
        if j >= n:
            raise _entities_error(f"Unclosed start tag at byte offset {begin_byte}")
        name = src[i + 1 : j].lower()
        if name not in _HTML_ENTITY_TYPES:
            raise _entities_error(f'Unsupported start tag "{name}" at byte offset {begin_byte}')
        attributes, i = _parse_html_attributes(src, j, name, begin_byte)
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise _entities_error(
                f'Tag "span" must have class "tg-spoiler" at byte offset {begin_byte}'
            )
        if name == "tg-emoji" and not attributes.get("emoji-id", "").isdigit():
            raise _entities_error(
                f"Custom emoji entity must have a valid emoji-id at byte offset {begin_byte}"
            )
        stack.append(_OpenTag(name, out.offset, begin_byte, attributes))
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return FormattedText(out.text(), _sorted(entities))


# --- MarkdownV2 ----------------------------------------------------------------------

_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass(slots=True)
class _OpenMarkdown:
    kind: str
    offset: int
    byte_offset: int
    language: str | None = None


def _reserved_error(char: str) -> BotApiError:
    return _entities_error(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    )


def _mdv2_closes(top: _OpenMarkdown, src: str, i: int) -> bool:
    char = src[i]
    following = src[i + 1] if i + 1 < len(src) else ""
    match top.kind:
        case "bold":
            return char == "*"
        case "italic":
            return char == "_" and following != "_"
        case "underline":
            return char == "_" and following == "_"
        case "strikethrough":
            return char == "~"
        case "spoiler":
            return char == "|" and following == "|"
        case "code":
            return char == "`"
        case "pre":
            return src.startswith("```", i)
        case _:
            return char == "]"


def _read_markdown_url(src: str, i: int) -> tuple[str | None, int]:
    """Read "(url)" after a link's closing bracket; return the url and next index."""
    if i >= len(src) or src[i] != "(":
        return None, i
    out: list[str] = []
    j = i + 1
    while j < len(src) and src[j] != ")":
        if src[j] == "\\" and j + 1 < len(src):
            j += 1
        out.append(src[j])
        j += 1
    if j >= len(src):
        raise _entities_error(f"Can't find end of a URL at byte offset {_byte_offset(src, i)}")
    return "".join(out), j + 1


def _skip_pre_header(src: str, i: int) -> tuple[str | None, int]:
    """After an opening ```: read an optional language and skip one newline."""
    end = i
    while end < len(src) and not src[end].isspace() and src[end] != "`":
        end += 1
    language = None
    if end != i and end < len(src) and src[end] != "`":
        language = src[i:end]
        i = end
    if i < len(src) and src[i] in "\r\n":
        i += 2 if src[i : i + 2] in ("\r\n", "\n\r") else 1
    return language, i


def parse_markdown_v2(src: str) -> FormattedText:
    """Parse MarkdownV2 into text and entities (TDLib's rules)."""
    out = _Builder()
    stack: list[_OpenMarkdown] = []
    entities: list[Entity] = []
    quote_start: int | None = None
    at_line_start = True
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        in_code = bool(stack) and stack[-1].kind in ("code", "pre")
        if char == "\\" and i + 1 < n and 0 < ord(src[i + 1]) <= 126:
            out.add(src[i + 1])
            i += 2
            at_line_start = False
            continue
        if at_line_start and not in_code and char == ">":
            if quote_start is None:
                quote_start = out.offset
            i += 1
            at_line_start = False
            continue
        if char == "\n":
            if quote_start is not None and not src.startswith(">", i + 1):
                entities.append(
                    {
                        "type": "blockquote",
                        "offset": quote_start,
                        "length": out.offset - quote_start,
                    }
                )
                quote_start = None
            out.add(char)
            i += 1
            at_line_start = True
            continue
        at_line_start = False
        if in_code and not _mdv2_closes(stack[-1], src, i):
            out.add(char)
            i += 1
            continue
        if char not in _MDV2_RESERVED:
            out.add(char)
            i += 1
            continue
        begin_byte = _byte_offset(src, i)
        if stack and _mdv2_closes(stack[-1], src, i):
            top = stack.pop()
            entity: Entity = {"type": top.kind, "offset": top.offset, "length": 0}
            entity["length"] = out.offset - top.offset
            if top.kind in ("underline", "spoiler"):
                i += 2
            elif top.kind == "pre":
                i += 3
                if top.language:
                    entity["language"] = top.language
            elif top.kind in ("text_link", "custom_emoji"):
                url, i = _read_markdown_url(src, i + 1)
                if top.kind == "custom_emoji":
                    emoji_id = (url or "").removeprefix("tg://emoji?id=")
                    if not emoji_id.isdigit():
                        raise _entities_error("Custom emoji entity must contain a tg://emoji URL")
                    entity["custom_emoji_id"] = emoji_id
                elif url:
                    entity["url"] = url
                else:
                    entity = {}
            else:
                i += 1
            if entity:
                entities.append(entity)
            continue
        following = src[i + 1] if i + 1 < n else ""
        language = None
        if char == "_" and following == "_":
            kind, i = "underline", i + 2
        elif char == "_":
            kind, i = "italic", i + 1
        elif char == "*":
            kind, i = "bold", i + 1
        elif char == "~":
            kind, i = "strikethrough", i + 1
        elif char == "|" and following == "|":
            kind, i = "spoiler", i + 2
        elif char == "[":
            kind, i = "text_link", i + 1
        elif char == "!" and following == "[":
            kind, i = "custom_emoji", i + 2
        elif src.startswith("```", i):
            kind = "pre"
            language, i = _skip_pre_header(src, i + 3)
        elif char == "`":
            kind, i = "code", i + 1
        else:
            raise _reserved_error(char)
        stack.append(_OpenMarkdown(kind, out.offset, begin_byte, language))
    if stack:
        top = stack[-1]
        raise _entities_error(
            f"Can't find end of {_MDV2_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
        )
    if quote_start is not None:
        entities.append(
            {"type": "blockquote", "offset": quote_start, "length": out.offset - quote_start}
        )
    return FormattedText(out.text(), _sorted(entities))


# --- legacy Markdown ---------------------------------------------------------------


def parse_markdown(src: str) -> FormattedText:
    """Parse legacy Markdown (no nesting; `_ * ` [` escapable with a backslash)."""
    out = _Builder()
    entities: list[Entity] = []
    i, n = 0, len(src)
    while i < n:
        char = src[i]
        if char == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin_byte = _byte_offset(src, i)
        language = None
        if src.startswith("```", i):
            kind, closing = "pre", "```"
            language, i = _skip_pre_header(src, i + 3)
        else:
            kind = {"_": "italic", "*": "bold", "`": "code", "[": "text_link"}[char]
            closing = "]" if char == "[" else char
            i += 1
        end = src.find(closing, i)
        if end < 0:
            raise _entities_error(
                f"Can't find end of the entity starting at byte offset {begin_byte}"
            )
        start = out.offset
        out.add(src[i:end])
        i = end + len(closing)
        entity: Entity = {"type": kind, "offset": start, "length": out.offset - start}
        if language:
            entity["language"] = language
        if kind == "text_link":
            url, i = _read_markdown_url(src, i)
            if not url:
                continue
            entity["url"] = url
        entities.append(entity)
    return FormattedText(out.text(), _sorted(entities))


# --- explicit entities, trimming, auto-detection -------------------------------------


def _explicit_entities(text: str, raw: object) -> list[Entity]:
    if not isinstance(raw, list):
        raise bad_request("can't parse entities JSON object")
    total = utf16_len(text)
    entities: list[Entity] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse MessageEntity JSON object")
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if not isinstance(kind, str) or kind not in ENTITY_TYPES:
            raise bad_request("can't parse MessageEntity: unsupported type")
        if not isinstance(offset, int) or not isinstance(length, int) or offset < 0:
            raise bad_request("can't parse MessageEntity: wrong offset or length")
        # TDLib silently clips entities to the text instead of refusing them.
        end = min(offset + length, total)
        if end <= offset:
            continue
        entity = {key: value for key, value in item.items() if value is not None}
        entity["offset"], entity["length"] = offset, end - offset
        entities.append(entity)
    return _sorted(entities)


def _trim(formatted: FormattedText) -> FormattedText:
    text = formatted.text
    stripped_left = text.lstrip(_TRIMMED)
    result = stripped_left.rstrip(_TRIMMED)
    if result == text:
        return formatted
    shift = utf16_len(text[: len(text) - len(stripped_left)])
    total = utf16_len(result)
    entities: list[Entity] = []
    for entity in formatted.entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(result, entities)


_PARSERS: dict[str, Callable[[str], FormattedText]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def format_text(
    raw: str,
    *,
    parse_mode: str | None,
    entities: object | None,
    max_length: int,
    too_long: str,
) -> FormattedText:
    """Turn a method's text/caption, parse_mode and entities into a stored text.

    `entities` wins over `parse_mode`, as in the Bot API. The result is trimmed
    and checked against `max_length`; an empty result is allowed (callers decide
    whether empty is an error, since it is for texts but not for captions). Like
    Telegram, links, mentions, hashtags and commands get entities of their own.
    """
    if entities is not None:
        formatted = FormattedText(raw, _explicit_entities(raw, entities))
    elif parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise bad_request("unsupported parse_mode")
        formatted = parser(raw)
    else:
        formatted = FormattedText(raw)
    formatted = _trim(formatted)
    if len(formatted.text) > max_length:
        raise bad_request(too_long)
    return FormattedText(formatted.text, merge_detected(formatted.text, formatted.entities))


_AUTO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("bot_command", re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("url", re.compile(r"(?<![\w@/])https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{3,31}(?!\w)")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
)


def detect_entities(text: str) -> list[Entity]:
    """The entities Telegram adds by itself: commands, links, e-mails, mentions, tags."""
    found: list[tuple[int, int, str]] = []
    for kind, pattern in _AUTO_PATTERNS:
        found.extend((m.start(), m.end(), kind) for m in pattern.finditer(text))
    found.sort(key=lambda item: (item[0], -item[1]))
    entities: list[Entity] = []
    covered_until = -1
    for start, end, kind in found:
        if start < covered_until:
            continue
        covered_until = end
        offset = utf16_len(text[:start])
        entities.append({"type": kind, "offset": offset, "length": utf16_len(text[start:end])})
    return entities


# Text inside these is shown verbatim or already linked: Telegram finds nothing there.
_OPAQUE_ENTITIES = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji"})


def merge_detected(text: str, entities: list[Entity]) -> list[Entity]:
    """`entities` plus the auto-detected ones that do not clash with them."""
    taken = [
        (e["offset"], e["offset"] + e["length"])
        for e in entities
        if e["type"] in _OPAQUE_ENTITIES or e["type"] in _AUTO_TYPES
    ]
    added = [
        found
        for found in detect_entities(text)
        if not any(
            found["offset"] < end and start < found["offset"] + found["length"]
            for start, end in taken
        )
    ]
    return _sorted(entities + added) if added else entities


_AUTO_TYPES = frozenset(kind for kind, _ in _AUTO_PATTERNS)
