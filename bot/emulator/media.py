"""Files the emulator holds: uploads from the bot and from users.

Telegram re-encodes photos into several sizes; without an image library the
emulator keeps the original bytes and only reports the sizes Telegram would
produce (every size downloads the same original file).
"""

from __future__ import annotations

import mimetypes
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PHOTO_SIZE = (800, 600)
# The long sides Telegram uses for the sizes of a photo ("s", "m", "x", "y", "w").
_PHOTO_SIDES = (90, 320, 800, 1280, 2560)

# file_id prefixes resembling Telegram's, so a person reading logs sees the kind.
_KIND_PREFIX = {
    "photo": "AgAC",
    "document": "BQAC",
    "voice": "AwAC",
    "audio": "CQAC",
    "video": "BAAC",
    "animation": "CgAC",
    "sticker": "CAAC",
    "video_note": "DQAC",
}
_KIND_FOLDER = {
    "photo": "photos",
    "document": "documents",
    "voice": "voice",
    "audio": "music",
    "video": "videos",
    "animation": "animations",
    "sticker": "stickers",
    "video_note": "video_notes",
}


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height read from a PNG, JPEG, GIF or WebP header, if recognisable."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (segment_length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 carry the frame size; C4, C8 and CC are other segments.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + segment_length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def guess_mime_type(file_name: str | None, declared: str | None) -> str | None:
    """The mime type Telegram would report: the declared one unless it is generic."""
    if declared and declared != "application/octet-stream":
        return declared
    if file_name:
        guessed, _ = mimetypes.guess_type(file_name)
        if guessed:
            return guessed
    return declared


@dataclass(slots=True, kw_only=True)
class StoredFile:
    """One downloadable file and the Bot API object that describes it."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    # For photos: the whole PhotoSize array this size belongs to, so a photo sent
    # again by the file_id of any of its sizes gets the same array back.
    photo_sizes: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def file_object(self) -> dict[str, Any]:
        """The Bot API `File` object that getFile returns."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }

    def media_object(self) -> dict[str, Any]:
        """The Document/Voice/... object a Message carries for this file."""
        obj: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name is not None:
            obj["file_name"] = self.file_name
        if self.mime_type is not None:
            obj["mime_type"] = self.mime_type
        obj.update(self.extra)
        return obj


class FileStore:
    """All files of one emulator, addressable by file_id and by file_path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._counter = 0

    def get(self, file_id: str) -> StoredFile | None:
        """The file with this file_id, if any."""
        return self._by_id.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        """The file served at `/file/bot<token>/<file_path>`, if any."""
        return self._by_path.get(file_path)

    def _new(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        extension: str | None = None,
    ) -> StoredFile:
        self._counter += 1
        if extension is None:
            extension = ""
            if file_name and "." in file_name:
                extension = file_name.rsplit(".", 1)[1][:10]
            elif mime_type and (guessed := mimetypes.guess_extension(mime_type)):
                extension = guessed.lstrip(".")
        suffix = f".{extension}" if extension else ""
        stored = StoredFile(
            file_id=_KIND_PREFIX.get(kind, "BQAC") + secrets.token_urlsafe(30),
            file_unique_id="AgAD" + secrets.token_urlsafe(9),
            kind=kind,
            data=data,
            file_path=f"{_KIND_FOLDER.get(kind, 'documents')}/file_{self._counter}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
        )
        self._by_id[stored.file_id] = stored
        self._by_path[stored.file_path] = stored
        return stored

    def add_file(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> StoredFile:
        """Store a non-photo file (document, voice, sticker, ...)."""
        stored = self._new(kind, data, file_name=file_name, mime_type=mime_type)
        if extra:
            stored.extra.update(extra)
        return stored

    def add_photo(self, data: bytes) -> list[dict[str, Any]]:
        """Store a photo and return its PhotoSize array, smallest first."""
        width, height = image_size(data) or DEFAULT_PHOTO_SIZE
        extension = "png" if data.startswith(b"\x89PNG") else "jpg"
        longest = max(width, height, 1)
        sides = [side for side in _PHOTO_SIDES if side < longest][:4]
        sizes: list[dict[str, Any]] = []
        for side in [*sides, min(longest, _PHOTO_SIDES[-1])]:
            scale = side / longest
            stored = self._new("photo", data, extension=extension)
            size = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(data),
                "width": max(1, round(width * scale)),
                "height": max(1, round(height * scale)),
            }
            stored.photo_sizes = sizes
            sizes.append(size)
        return sizes

    def clear(self) -> None:
        """Forget every file."""
        self._by_id.clear()
        self._by_path.clear()
