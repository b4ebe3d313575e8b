"""The main menu: built once per language and published set, again when flows change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.app import Runtime, prepare_content
from bot.keyboards import menu_flows
from bot.usecases import flows
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
        # An administrator publishes a revision of a flow that leaves the menu: the next
        # menu shows it.
        first = menu_flows(published)[0].id
        _, source = await flows.revision_source(uow, first)
        assert source.count("menu: true") == 1
        now = datetime.now(UTC)
        draft = await flows.save_draft(
            uow,
            catalog,
            source.replace("menu: true", "menu: false"),
            filename="hidden.yaml",
            author="test",
            now=now,
        )
        await flows.publish(uow, catalog, first, draft.revision.number, actor="test", now=now)
        fewer = await services.main_menu(uow, "en")
        assert len(labels(fewer)) == len(labels(english)) - 1
        assert labels(await services.main_menu(uow, "fr")) != labels(french)
