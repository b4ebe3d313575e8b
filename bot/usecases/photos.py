"""Report photos: fetched from Telegram after the report is saved, stored without metadata.

EXIF can carry the exact place a photo was taken and the phone that took it, so
only the pixels are kept (re-encoded, orientation applied, at most 2560 px).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from dataclasses import dataclass

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.runtime.context import Services
from storage.repositories.reports import PHOTO_UNAVAILABLE

log = logging.getLogger(__name__)

MAX_SIDE = 2560
MAX_DOWNLOAD = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CleanPhoto:
    """A re-encoded photo with no metadata."""

    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"


def strip_metadata(raw: bytes) -> CleanPhoto:
    """Re-encode an image as JPEG without EXIF, GPS or other metadata (CPU work)."""
    with Image.open(io.BytesIO(raw)) as image:
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
        pixels = upright.convert("RGB")
        out = io.BytesIO()
        # A new image from the pixels alone: nothing of the original's info is copied.
        clean = Image.new("RGB", pixels.size)
        clean.paste(pixels)
        clean.save(out, format="JPEG", quality=85, optimize=True)
        return CleanPhoto(out.getvalue(), clean.width, clean.height)


class PhotoFetcher:
    """Downloads pending report photos in the background, outside any transaction."""

    def __init__(self, services: Services, bot: Bot) -> None:
        self._services = services
        self._bot = bot
        self._wake = services.signals.photos_pending

    async def run(self, stopping: asyncio.Event, *, interval: float = 60.0) -> None:
        """Fetch pending photos whenever woken (and every ``interval`` seconds).

        Network trouble leaves the photos pending for the next round.
        """
        while not stopping.is_set():
            try:
                await self.fetch_pending()
            except Exception:
                log.exception("fetching report photos failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def fetch_pending(self) -> int:
        """Fetch and store every pending photo; returns how many were stored."""
        database = self._services.database
        stored = 0
        while True:
            async with database.uow() as uow:
                pending = await uow.repos.reports.photos_to_fetch()
            if not pending:
                return stored
            for photo_id, file_id in pending:
                clean = await self._download(file_id)
                async with database.uow() as uow:
                    await uow.repos.reports.store_photo(
                        photo_id,
                        data=clean.data if clean else None,
                        content_type=clean.content_type if clean else PHOTO_UNAVAILABLE,
                        width=clean.width if clean else None,
                        height=clean.height if clean else None,
                    )
                stored += clean is not None

    async def _download(self, file_id: str) -> CleanPhoto | None:
        try:
            file = await self._bot.get_file(file_id)
            if file.file_path is None or (file.file_size or 0) > MAX_DOWNLOAD:
                return None
            buffer = io.BytesIO()
            await self._bot.download_file(file.file_path, destination=buffer)
            return await asyncio.to_thread(strip_metadata, buffer.getvalue())
        except (TelegramBadRequest, UnidentifiedImageError, Image.DecompressionBombError) as error:
            # Telegram does not know the file, or it is no image: it never will be.
            log.warning("photo %s is unusable: %s", file_id[:12], type(error).__name__)
            return None
