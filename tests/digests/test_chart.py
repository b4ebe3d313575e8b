"""The digest chart is a real PNG, labelled in the manager's language, drawn off the loop."""

from __future__ import annotations

import asyncio
import io
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from PIL import Image

from bot.digests import chart
from bot.digests.chart import render_chart
from bot.i18n import Translator
from storage.repositories.digests import SeriesPoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def eight_weeks() -> list[SeriesPoint]:
    first = datetime(2026, 1, 5, tzinfo=UTC)
    return [
        SeriesPoint(
            start=first + timedelta(weeks=n),
            end=first + timedelta(weeks=n + 1),
            received=10 + n,
            fixed=8 + n,
            ratings=0 if n == 3 else 20,
            csat=None if n == 3 else 0.5 + n / 20,
        )
        for n in range(8)
    ]


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_the_chart_is_a_png_pillow_can_open(language: str) -> None:
    png = await render_chart(eight_weeks(), language, translator=Translator.load("en"))
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.verify()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (960, 540)


async def test_labels_come_from_the_catalogue_in_the_language() -> None:
    translator = Translator.load("en")
    drawn: list[dict[str, str]] = []
    real_draw = chart._draw

    def spy(series: list[SeriesPoint], language: str, labels: dict[str, str]) -> bytes:
        drawn.append(labels)
        return real_draw(series, language, labels)

    with mock.patch.object(chart, "_draw", spy):
        await render_chart(eight_weeks(), "fr-CA", translator=translator)
    assert drawn[0]["received"] == "Reçus"
    assert drawn[0]["csat"] == "Satisfaits (CSAT)"
    assert drawn[0]["title"] == translator.template("fr", "digest.chart.title")


async def test_rendering_runs_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []
    real_draw = chart._draw

    def spy(series: list[SeriesPoint], language: str, labels: dict[str, str]) -> bytes:
        threads.append(threading.current_thread())
        return real_draw(series, language, labels)

    with mock.patch.object(chart, "_draw", spy):
        # The loop keeps ticking while the chart is drawn.
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        task = asyncio.create_task(ticker())
        await render_chart(eight_weeks(), "en")
        task.cancel()
    assert threads and threads[0] is not threading.main_thread()
    assert ticks > 1


async def test_an_empty_series_still_draws() -> None:
    png = await render_chart([], "en")
    assert png.startswith(PNG_SIGNATURE)
