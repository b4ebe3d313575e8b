"""reply_markup: validation with Telegram's errors, and normalisation for storage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator.errors import bad_request

MAX_CALLBACK_DATA_BYTES = 64
_INLINE_ACTIONS = (
    "callback_data",
    "url",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "web_app",
    "callback_game",
    "pay",
)
_URL_SCHEMES = ("http://", "https://", "tg://", "mailto:", "tel:")


@dataclass(frozen=True, slots=True)
class Markup:
    """A validated reply_markup: `inline` goes into the Message, `reply` to the chat."""

    inline: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None
    remove_keyboard: bool = False
    force_reply: dict[str, Any] | None = None


def _clean(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if value is not None}


def _rows(markup: dict[str, Any], field: str) -> list[list[Any]]:
    rows = markup.get(field)
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(f'field "{field}" must be an Array of Arrays')
    return rows


def _inline_button(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    button = _clean(raw)
    text = button.get("text")
    if not isinstance(text, str) or not text:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    actions = [key for key in _INLINE_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not data or len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.startswith(_URL_SCHEMES) or len(url) > 2048:
            raise bad_request("BUTTON_URL_INVALID")
    return button


def _reply_button(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise bad_request(
            "can't parse keyboard button: KeyboardButton must be a String or an Object"
        )
    button = _clean(raw)
    if not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
    return button


def parse_inline_keyboard(raw: Any) -> dict[str, Any] | None:
    """Validate an InlineKeyboardMarkup; None when it has no buttons."""
    if not isinstance(raw, dict) or "inline_keyboard" not in raw:
        raise bad_request("can't parse inline keyboard markup JSON object")
    rows = [[_inline_button(b) for b in row] for row in _rows(raw, "inline_keyboard")]
    rows = [row for row in rows if row]
    return {"inline_keyboard": rows} if rows else None


def parse_markup(raw: Any) -> Markup:
    """Validate any of the four reply_markup kinds."""
    if raw is None:
        return Markup()
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        return Markup(inline=parse_inline_keyboard(raw))
    if "keyboard" in raw:
        rows = [[_reply_button(b) for b in row] for row in _rows(raw, "keyboard")]
        keyboard = _clean({**raw, "keyboard": [row for row in rows if row]})
        if not keyboard["keyboard"]:
            raise bad_request("keyboard must be non-empty")
        return Markup(reply=keyboard)
    if raw.get("remove_keyboard"):
        return Markup(remove_keyboard=True)
    if raw.get("force_reply"):
        return Markup(force_reply=_clean(raw))
    raise bad_request("can't parse reply keyboard markup JSON object")


def find_button(
    inline: dict[str, Any] | None, *, data: str | None, text: str | None
) -> dict[str, Any] | None:
    """The inline button with this callback_data (or, else, this visible text)."""
    if inline is None:
        return None
    for row in inline.get("inline_keyboard", []):
        for button in row:
            if data is not None and button.get("callback_data") == data:
                return dict(button)
            if data is None and text is not None and button.get("text") == text:
                return dict(button)
    return None
