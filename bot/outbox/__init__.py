"""The outbox: every proactive message is written in the transaction that decides it.

:func:`enqueue` stores Bot API calls (aiogram method objects) as JSON; the sender
(:mod:`bot.outbox.sender`) delivers them within Telegram's limits.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from aiogram import methods as telegram_methods
from aiogram.client.default import Default
from aiogram.methods import TelegramMethod
from aiogram.types import BufferedInputFile
from pydantic import BaseModel

from storage.db import UnitOfWork

# A file uploaded with the call (a digest's chart), stored inline in base64.
_UPLOAD: Final = "__upload__"


def _keep_tags(value: Any) -> None:
    """Mark the ``type`` of every object nested in ``value`` as set, so that a dump
    without unset fields keeps it: it is the tag that tells a union's members apart
    when the method is rebuilt (a command scope for a chat, not for its administrators)."""
    if isinstance(value, BaseModel):
        if "type" in type(value).model_fields:
            value.model_fields_set.add("type")
        for name in value.model_fields_set:
            _keep_tags(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            _keep_tags(item)


def method_payload(method: TelegramMethod[Any]) -> tuple[str, dict[str, Any]]:
    """The class name and JSON parameters of an aiogram method.

    A top-level :class:`BufferedInputFile` parameter (``photo``, ``document``) is
    kept in the payload as base64, so small files travel through the outbox too.
    Raises ``ValueError`` for a parameter JSON cannot hold (a file on disk, a URL
    to fetch).
    """
    uploads: dict[str, BufferedInputFile] = {}
    defaults: set[str] = set()
    for field in type(method).model_fields:
        value = getattr(method, field, None)
        if isinstance(value, BufferedInputFile):
            uploads[field] = value
        elif isinstance(value, Default):
            # ``message.answer(...)`` fills in the bot's defaults as placeholders; a
            # rebuilt method gets the same placeholders by leaving the field out.
            defaults.add(field)
        else:
            _keep_tags(value)
    payload = method.model_dump(
        mode="json", exclude_none=True, exclude_unset=True, exclude=set(uploads) | defaults
    )
    for field, upload in uploads.items():
        payload[field] = {
            _UPLOAD: {
                "filename": upload.filename,
                "base64": base64.b64encode(upload.data).decode("ascii"),
            }
        }
    return type(method).__name__, payload


def _restored(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(upload := value.get(_UPLOAD), dict):
        return BufferedInputFile(
            base64.b64decode(upload["base64"]), filename=str(upload["filename"])
        )
    return value


def method_from_payload(name: str, payload: dict[str, Any]) -> TelegramMethod[Any]:
    """Rebuild an aiogram method stored by :func:`method_payload`."""
    cls = getattr(telegram_methods, name, None)
    if not (isinstance(cls, type) and issubclass(cls, TelegramMethod)):
        raise ValueError(f"not a Bot API method: {name!r}")
    method: TelegramMethod[Any] = cls.model_validate(
        {key: _restored(value) for key, value in payload.items()}
    )
    return method


async def enqueue(
    uow: UnitOfWork,
    methods: Iterable[TelegramMethod[Any]],
    *,
    chat_id: int,
    citizen_id: int | None,
    kind: str,
    now: datetime,
    priority: int = 100,
    idempotency_key: str | None = None,
    broadcast_id: int | None = None,
) -> list[int]:
    """Queue messages for one chat, in order; returns the new outbox ids.

    With an ``idempotency_key`` the i-th message gets ``key#i``, so deciding the
    same thing twice queues it once.
    """
    ids = []
    for index, method in enumerate(methods):
        name, payload = method_payload(method)
        key = None if idempotency_key is None else f"{idempotency_key}#{index}"
        new_id = await uow.repos.outbox.enqueue(
            chat_id=chat_id,
            citizen_id=citizen_id,
            kind=kind,
            method=name,
            payload=payload,
            now=now,
            priority=priority,
            idempotency_key=key,
            broadcast_id=broadcast_id,
        )
        if new_id is not None:
            ids.append(new_id)
    return ids
