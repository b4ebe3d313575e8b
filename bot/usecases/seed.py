"""The starting catalogue of a fresh install (services, categories, example shifts)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from storage.db import UnitOfWork


def load_seed() -> dict[str, Any]:
    """The shipped seed document (``bot/seed/municipal.yaml``)."""
    text = resources.files("bot").joinpath("seed/municipal.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


async def seed_catalogue(uow: UnitOfWork, *, now: datetime, timezone: ZoneInfo) -> bool:
    """Fill an empty catalogue; a catalogue with any service is left alone.

    Returns True when it seeded. Example opportunities are placed a few days after
    ``now``, at their local time, so the volunteer journey works from day one.
    """
    if await uow.repos.catalog.count_services():
        return False
    seed = load_seed()
    service_ids = {}
    for position, service in enumerate(seed["services"]):
        service_ids[service["code"]] = await uow.repos.catalog.upsert_service(
            code=service["code"], names=service["names"], position=position
        )
    for position, category in enumerate(seed["categories"]):
        await uow.repos.catalog.upsert_category(
            code=category["code"],
            service_id=service_ids[category["service"]],
            names=category["names"],
            target_days=int(category.get("target_days", 10)),
            radius_m=int(category.get("radius_m", 50)),
            open311_code=category.get("open311_code"),
            position=position,
        )
    if await uow.repos.volunteering.count_opportunities() == 0:
        today = now.astimezone(timezone).date()
        for item in seed["opportunities"]:
            hour, minute = (int(part) for part in str(item["at"]).split(":"))
            day = today + timedelta(days=int(item["in_days"]))
            starts = datetime.combine(day, time(hour, minute), tzinfo=timezone)
            await uow.repos.volunteering.add_opportunity(
                code=item["code"],
                titles=item["titles"],
                descriptions=item["descriptions"],
                skills=list(item["skills"]),
                area=item.get("area"),
                place=item["place"],
                starts_at=starts,
                ends_at=starts + timedelta(hours=float(item["hours"])),
                slots=int(item["slots"]),
            )
    return True
