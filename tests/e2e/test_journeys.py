"""The three citizen journeys, end to end over HTTP, in English and French, on both databases."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from storage.db import Database
from storage.models import Rating, Report, ReportFollower, ReportPhoto, Signup
from tests.e2e.conftest import BotFactory
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer

pytestmark = pytest.mark.e2e

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "report": "📣 Report an issue",
        "volunteer": "🤝 Volunteer",
        "rate": "⭐ Rate a service",
        "category_q": "What would you like to report",
        "potholes": "🕳️ Roads and potholes",
        "where": "Where is it",
        "photo_q": "Can you add a photo",
        "photo_1": "Photo 1 of 3",
        "done": "✅ Done",
        "describe": "describe the problem",
        "anonymous": "stay anonymous",
        "yes": "Yes",
        "no": "No",
        "check": "check your report",
        "send": "✅ Send the report",
        "sent": "Your report number is",
        "same": "Is it this one",
        "me_too": "🙋 Yes, me too",
        "followed": "Your voice is added",
        "enjoy": "What would you enjoy doing",
        "food": "🥫 Food bank",
        "where_help": "Where could you help",
        "anywhere": "Anywhere",
        "when_free": "When are you usually free",
        "weekend_morning": "Weekend mornings",
        "contact": "May the organisers",
        "fit": "These opportunities fit you",
        "signed_up": "You're signed up",
        "waiting": "waiting list, in position 1",
        "which_service": "Which service would you like to rate",
        "roads_service": "Roads and pavements",
        "overall": "Overall, how satisfied",
        "more": "Would you tell us a little more",
        "no_thanks": "No, thanks",
        "anything_else": "Anything else",
        "thanks": "Thank you for your feedback",
        "not_understood": "Please",
    },
    "fr": {
        "report": "📣 Signaler un problème",
        "volunteer": "🤝 Devenir bénévole",
        "rate": "⭐ Évaluer un service",
        "category_q": "Que souhaitez-vous signaler",
        "potholes": "🕳️ Chaussée et nids-de-poule",
        "where": "Où est-ce",
        "photo_q": "Pouvez-vous ajouter une photo",
        "photo_1": "Photo 1 sur 3",
        "done": "✅ Terminé",
        "describe": "Décrivez le problème",
        "anonymous": "rester anonyme",
        "yes": "Oui",
        "no": "Non",
        "check": "Vérifiez votre signalement",
        "send": "✅ Envoyer le signalement",
        "sent": "Votre signalement porte le numéro",
        "same": "Est-ce celui-ci",
        "me_too": "🙋 Oui, moi aussi",
        "followed": "Votre voix s'ajoute",
        "enjoy": "Qu'aimeriez-vous faire",
        "food": "🥫 Banque alimentaire",
        "where_help": "Où pourriez-vous aider",
        "anywhere": "Partout",
        "when_free": "Quand êtes-vous généralement disponible",
        "weekend_morning": "Le week-end, le matin",
        "contact": "Les organisateurs",
        "fit": "Ces missions vous correspondent",
        "signed_up": "Vous êtes inscrit·e",
        "waiting": "liste d'attente, en position 1",
        "which_service": "Quel service souhaitez-vous évaluer",
        "roads_service": "Voirie",
        "overall": "Dans l'ensemble",
        "more": "Voulez-vous nous en dire un peu plus",
        "no_thanks": "Non, merci",
        "anything_else": "Autre chose à nous dire",
        "thanks": "Merci pour votre avis",
        "not_understood": "Merci",
    },
}
PLACE = (48.85660, 2.35220)


def jpeg_with_gps() -> bytes:
    """A small JPEG carrying EXIF GPS tags that must not survive."""
    image = Image.new("RGB", (64, 48), "orange")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (48.0, 51.0, 24.0), 4: (2.0, 21.0, 8.0)}  # GPS latitude/longitude
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def rows(url: str, statement: Any) -> list[Any]:
    async with open_database(url) as database, database.uow() as uow:
        return list((await uow.session.scalars(statement)).all())


async def report_journey(citizen: Citizen, t: dict[str, str]) -> str:
    await citizen.send(t["report"], expect=t["category_q"])
    await citizen.tap(t["potholes"], expect=t["where"])
    await citizen.sticker(expect=t["where"])  # wrong input: re-prompted, nothing lost
    await citizen.location(*PLACE, expect=t["photo_q"])
    await citizen.photo(jpeg_with_gps(), expect=t["photo_1"])
    await citizen.send(t["done"], expect=t["describe"])
    await citizen.send("Deep pothole <b>near</b> the school & the bakery", expect=t["anonymous"])
    await citizen.tap(t["no"], expect=t["check"])
    sent = await citizen.tap(t["send"], expect=t["sent"])
    assert t["report"] in await citizen.keyboard()  # the main menu is back
    reference = sent.content.split(t["sent"])[1].split()[0].strip(".")
    assert reference.startswith("R-")
    return reference


async def volunteer_journey(citizen: Citizen, t: dict[str, str]) -> None:
    await citizen.send(t["volunteer"], expect=t["enjoy"])
    await citizen.tap(t["food"], expect=t["enjoy"])
    await citizen.tap(t["done"], expect=t["where_help"])
    await citizen.tap(t["anywhere"], expect=t["where_help"])
    await citizen.tap(t["done"], expect=t["when_free"])
    await citizen.tap(t["weekend_morning"], expect=t["when_free"])
    await citizen.tap(t["done"], expect=t["contact"])
    offer = await citizen.tap(t["yes"], expect=t["fit"])
    await citizen.tap(offer.button_texts[0], expect=t["signed_up"])


async def rate_journey(citizen: Citizen, t: dict[str, str]) -> None:
    await citizen.send(t["rate"], expect=t["which_service"])
    await citizen.tap(t["roads_service"], expect=t["overall"])
    await citizen.send("seven", expect=t["overall"])
    await citizen.tap("4", expect=t["more"])
    await citizen.tap(t["no_thanks"], expect=t["anything_else"])
    await citizen.send("The crew was quick & kind <3", expect=t["thanks"])


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_the_three_journeys(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str, language: str
) -> None:
    await start_bot()
    t = TEXTS[language]
    client = emulator_server.client
    first = Citizen(client, {"id": 7001, "first_name": "Ana", "language_code": language})
    second = Citizen(client, {"id": 7002, "first_name": "Ben", "language_code": language})

    # Report an issue: the report with its location, photo and reference.
    reference = await report_journey(first, t)
    [report] = await rows(database_url, select(Report))
    assert report.reference == reference
    assert (report.latitude, report.longitude) == PLACE
    assert report.status == "open" and report.description.startswith("Deep pothole <b>near</b>")
    assert report.language == language and not report.anonymous
    assert (report.due_at - report.created_at).days == 10

    # A neighbour reporting the same thing nearby is offered "me too" instead.
    await second.send(t["report"], expect=t["category_q"])
    await second.tap(t["potholes"], expect=t["where"])
    await second.location(PLACE[0] + 0.0002, PLACE[1], expect=t["photo_q"])
    await second.send(t["done"], expect=t["describe"])
    await second.send("Same hole, still there", expect=t["anonymous"])
    duplicate = await second.tap(t["yes"], expect=t["same"])
    assert reference in duplicate.content
    await second.tap(t["me_too"], expect=t["followed"])
    [report] = await rows(database_url, select(Report))
    assert report.supporters == 2
    assert len(await rows(database_url, select(ReportFollower))) == 2

    # The photo arrives in the background, without its EXIF.
    photos = await _wait_for_photo(database_url)
    stored = Image.open(io.BytesIO(photos[0].data))
    assert stored.size == (64, 48)
    assert not stored.getexif()

    # Volunteer: a profile, then a sign-up.
    await volunteer_journey(first, t)
    [signup] = await rows(database_url, select(Signup))
    assert signup.status == "confirmed"

    # Rate a service.
    await rate_journey(first, t)
    [rating] = await rows(database_url, select(Rating))
    assert rating.overall == 4 and rating.language == language
    assert rating.comment == "The crew was quick & kind <3"
    assert rating.timeliness is None


async def _wait_for_photo(database_url: str) -> list[Any]:
    async with asyncio.timeout(60):
        while True:
            photos = await rows(database_url, select(ReportPhoto))
            if photos and all(photo.data for photo in photos):
                return photos
            await asyncio.sleep(0.1)


async def test_a_report_survives_kills_and_is_created_once(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    t = TEXTS["en"]
    client = emulator_server.client
    citizen = Citizen(client, {"id": 7101, "first_name": "Kim", "language_code": "en"})
    bot = await start_bot()
    await citizen.send(t["report"], expect=t["category_q"])
    await citizen.tap(t["potholes"], expect=t["where"])
    await citizen.location(*PLACE, expect=t["photo_q"])
    assert await bot.kill() == -9

    # After the crash the conversation continues at the same step.
    bot = await start_bot()
    await citizen.send(t["done"], expect=t["describe"])
    await citizen.send("Loose paving stones", expect=t["anonymous"])
    await citizen.tap(t["yes"], expect=t["check"])
    await bot.stop()

    # Killed the moment the "send" press is stored, before it is handled...
    doomed = await start_bot(CITIZENBOT_FAILPOINTS="after_store")
    history = await client.history(citizen.id)
    confirm = next(m for m in reversed(history.bot_messages) if t["send"] in m.button_texts)
    await client.press_button(citizen.id, confirm.message_id, text=t["send"])
    assert await doomed.wait_exit() == -9
    assert await rows(database_url, select(Report)) == []

    # ...the restart handles it exactly once.
    await start_bot()
    await client.wait_for_bot_message(
        citizen.id, predicate=lambda m: t["sent"] in m.content, timeout=60
    )
    [report] = await rows(database_url, select(Report))
    assert report.description == "Loose paving stones" and report.anonymous
    assert (report.latitude, report.longitude) == PLACE
    await citizen.send("/status", expect=report.reference or "R-")
    assert len(await rows(database_url, select(Report))) == 1
