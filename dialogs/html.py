"""The subset of HTML that Telegram accepts with ``parse_mode=HTML``."""

from __future__ import annotations

import html
import re

# Telegram's documented tags; attributes are allowed only where Telegram uses them.
_BARE_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "tg-spoiler"}
)
_TAG = re.compile(r"<(/?)([a-z][a-z-]*)((?:\s+[^<>]*)?)>")
_HREF = re.compile(r'^\s+href="[^"<>]*"\s*$')
_SPOILER = re.compile(r'^\s+class="tg-spoiler"\s*$')
_BLOCKQUOTE = re.compile(r"^(\s+expandable)?\s*$")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")


def escape(text: str) -> str:
    """Escape plain text for an HTML message (quotes may stay: Telegram accepts them)."""
    return html.escape(text, quote=False)


def _attributes_ok(name: str, attributes: str) -> bool:
    if not attributes.strip():
        return name != "a"
    if name == "a":
        return bool(_HREF.match(attributes))
    if name == "span":
        return bool(_SPOILER.match(attributes))
    if name == "blockquote":
        return bool(_BLOCKQUOTE.match(attributes))
    return False


def check_html(text: str) -> str | None:
    """Return why ``text`` would be rejected by Telegram's HTML parser, or None if it is fine."""
    stack: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            match = _TAG.match(text, position)
            if match is None:
                return f"'<' at character {position + 1} is not a tag; write &lt;"
            closing, name, attributes = match.groups()
            if name not in _BARE_TAGS and name not in {"a", "span", "blockquote"}:
                return f"tag <{name}> is not supported by Telegram"
            if closing:
                if attributes.strip():
                    return f"closing tag </{name}> has attributes"
                if not stack or stack[-1] != name:
                    return f"closing tag </{name}> does not match an open tag"
                stack.pop()
            else:
                if not _attributes_ok(name, attributes):
                    return f"tag <{name}> has attributes Telegram does not accept"
                stack.append(name)
            position = match.end()
        elif char == "&":
            match = _ENTITY.match(text, position)
            if match is None:
                return f"'&' at character {position + 1} is not an entity; write &amp;"
            position = match.end()
        elif char == ">":
            return f"'>' at character {position + 1} is not part of a tag; write &gt;"
        else:
            position += 1
    if stack:
        return f"tag <{stack[-1]}> is never closed"
    return None


def to_plain(text: str) -> str:
    """Drop the tags of a valid HTML text and decode its entities."""
    return html.unescape(_TAG.sub("", text))
