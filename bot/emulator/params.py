"""Bot API parameters from any of the encodings Telegram accepts.

Query string, urlencoded and multipart values arrive as strings (aiogram sends
nested objects such as reply_markup as JSON strings and booleans as "true");
JSON bodies arrive typed. `Params` reads both the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web

from bot.emulator.errors import BotApiError, bad_request

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_ATTACH = "attach://"


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart request."""

    data: bytes
    file_name: str | None
    content_type: str | None


class Params:
    """A method's parameters with Telegram's lenient typing."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload] | None = None):
        self.values = dict(values)
        self.uploads = dict(uploads or {})

    def has(self, name: str) -> bool:
        """True when the parameter was given (even as an empty string)."""
        return name in self.values or name in self.uploads

    def get_str(self, name: str) -> str | None:
        """The parameter as a string; numbers are accepted and converted."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise bad_request(f"{name} must be a String")

    def require_str(self, name: str, *, empty: str | None = None) -> str:
        """A required non-empty string; `empty` is the description when it is absent."""
        value = self.get_str(name)
        if not value:
            raise bad_request(empty or f"{name} is empty")
        return value

    def get_int(self, name: str) -> int | None:
        """The parameter as an integer ("42" and 42 alike)."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f"{name} must be an Integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def require_int(self, name: str, *, empty: str | None = None) -> int:
        """A required integer."""
        value = self.get_int(name)
        if value is None:
            raise bad_request(empty or f"{name} is empty")
        return value

    def get_float(self, name: str) -> float | None:
        """The parameter as a float."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f"{name} must be a Float")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise bad_request(f"invalid {name} specified")

    def get_bool(self, name: str, default: bool = False) -> bool:
        """The parameter as a boolean ("true", "1", true)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes", "on")
        return default

    def get_json(self, name: str) -> Any:
        """An object or array parameter, given typed (JSON body) or as a JSON string."""
        value = self.values.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError as error:
                raise bad_request(f"can't parse {name} JSON object") from error
        return value

    def get_file(self, name: str) -> Upload | str | None:
        """A file parameter: an upload (direct or `attach://`), or a file_id/URL string."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise bad_request(f"wrong type of the {name} field")
        if value.startswith(_ATTACH):
            upload = self.uploads.get(value[len(_ATTACH) :])
            if upload is None:
                raise bad_request(f"file {value!r} not found in the request")
            return upload
        return value

    def summary(self) -> dict[str, Any]:
        """The parameters for the call log: files shown by name and size, not bytes."""
        summary: dict[str, Any] = {}
        for key, value in self.values.items():
            if isinstance(value, str) and value.startswith(_ATTACH):
                upload = self.uploads.get(value[len(_ATTACH) :])
                summary[key] = _describe(upload) if upload else value
            else:
                summary[key] = value
        attached = {
            v[len(_ATTACH) :]
            for v in self.values.values()
            if isinstance(v, str) and v.startswith(_ATTACH)
        }
        for key, upload in self.uploads.items():
            if key not in attached:
                summary[key] = _describe(upload)
        return summary


def _describe(upload: Upload) -> dict[str, Any]:
    return {"file_name": upload.file_name, "size": len(upload.data)}


async def _read_part(part: BodyPartReader, budget: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk():
        data.extend(chunk)
        if len(data) > budget:
            raise BotApiError(413, "Request Entity Too Large")
    return bytes(data)


async def read_multipart(reader: MultipartReader) -> Params:
    """Read a multipart/form-data body into Params, keeping file parts as uploads."""
    values: dict[str, Any] = {}
    uploads: dict[str, Upload] = {}
    budget = MAX_UPLOAD_BYTES
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        data = await _read_part(part, budget)
        budget -= len(data)
        if part.filename is not None:
            content_type = part.headers.get("Content-Type")
            uploads[part.name] = Upload(data, part.filename, content_type)
        else:
            charset = part.get_charset(default="utf-8")
            values[part.name] = data.decode(charset, errors="replace")
    return Params(values, uploads)


async def read_params(request: web.Request) -> Params:
    """Merge query-string parameters with those of the body, whatever its encoding."""
    values: dict[str, Any] = dict(request.query)
    if request.method not in ("POST", "PUT", "PATCH") or not request.body_exists:
        return Params(values)
    content_type = request.content_type
    if content_type == "multipart/form-data":
        # The bot's own web app may keep aiohttp's 1 MiB default; uploads need more.
        roomy = request.clone(client_max_size=MAX_UPLOAD_BYTES)
        body = await read_multipart(await roomy.multipart())
        values.update(body.values)
        return Params(values, body.uploads)
    raw = await request.read()
    if not raw:
        return Params(values)
    if content_type == "application/json":
        try:
            parsed = json.loads(raw)
        except ValueError as error:
            raise bad_request("can't parse JSON object") from error
        if not isinstance(parsed, dict):
            raise bad_request("can't parse JSON object")
        values.update(parsed)
    elif content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        values.update({key: value for key, value in form.items() if isinstance(value, str)})
    return Params(values)
