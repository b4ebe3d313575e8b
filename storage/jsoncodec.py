"""JSON text as the bot writes and reads it, with orjson.

Every update encodes and decodes several JSON documents: its Bot API calls, the dialog
state and the inbox payload it stores, the answers it reads. orjson does this several
times faster than the standard library's module. What orjson refuses (integers beyond
64 bits, keys that are not strings, lone surrogates) takes the standard library's way,
so nothing that was accepted before is refused now.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """``value`` as JSON text."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


# A NUL escape, not an escaped backslash followed by "u0000".
_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def dumps_jsonb(value: Any) -> str:
    """``value`` as JSON text PostgreSQL's JSONB takes: it refuses NUL characters, so
    each becomes U+FFFD (the text stays, marked where they were)."""
    text = dumps(value)
    if "\\u0000" not in text:
        return text
    return _NUL.sub(r"\1\\ufffd", text)


def loads_bot_api(document: str | bytes) -> Any:
    """A document of the Bot API (an update, an answer). Its integers fit in 64 bits,
    as the Bot API guarantees; orjson would read larger ones as floats."""
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError:
        return json.loads(document)
