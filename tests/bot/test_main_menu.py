"""The main menu: built once per language and published set, again when flows change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import Runtime, prepare_content
from bot.keyboards import menu_flows
from tests.support.inprocess import offline_runtime


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    async with offline_runtime(database_url) as built:
        await prepare_content(built)
        yield built


def labels(menu: object) -> list[str]:
    return [button.text for row in menu.keyboard for button in row]  # type: ignore[attr-defined]


async def test_the_menu_follows_the_published_flows_and_the_language(runtime: Runtime) -> None:
    services = runtime.services
    catalog = services.conversations.catalog
    async with services.database.uow() as uow:
        english = await services.main_menu(uow, "en")
        assert await services.main_menu(uow, "en") is english  # kept
        french = await services.main_menu(uow, "fr")
        assert labels(french) != labels(english)
        published = await catalog.published(uow)
        assert len(labels(english)) >= 2
        # A flow leaves the menu (as after a roll-back elsewhere): the next menu shows it.
        first = menu_flows(published)[0].id
        catalog._published = {key: value for key, value in published.items() if key != first}
        fewer = await services.main_menu(uow, "en")
        assert len(labels(fewer)) == len(labels(english)) - 1
        assert labels(await services.main_menu(uow, "fr")) != labels(french)
