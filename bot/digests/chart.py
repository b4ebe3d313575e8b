"""The digest's chart: reports received and fixed (bars) and CSAT (a line), as a PNG.

Rendering takes tens of milliseconds of CPU, so it runs in a worker thread and
never holds up the event loop. Matplotlib is imported there too: its first import
builds a font cache, which can take seconds.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence

from babel.dates import format_date

from bot.i18n import Translator
from storage.repositories.digests import SeriesPoint

# Matplotlib's global state (font cache, rc parameters) is not thread-safe; one
# figure at a time is plenty for digests.
_RENDER_LOCK = threading.Lock()
_SIZE_INCHES = (8.0, 4.5)
_DPI = 120
_RECEIVED_COLOUR = "#9db4d3"
_FIXED_COLOUR = "#2f6db5"
_CSAT_COLOUR = "#d9822b"


def _labels(translator: Translator, language: str) -> dict[str, str]:
    # Raw templates: chart labels are plain text, never HTML.
    keys = ("title", "reports_axis", "csat_axis", "received", "fixed", "csat", "period_axis")
    return {key: translator.template(language, f"digest.chart.{key}") for key in keys}


def _draw(series: Sequence[SeriesPoint], language: str, labels: dict[str, str]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    positions = list(range(len(series)))
    ticks = [format_date(point.start.date(), format="d MMM", locale=language) for point in series]
    width = 0.38
    with _RENDER_LOCK:
        # A Figure of its own, not pyplot: no global current figure to share.
        figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, layout="constrained")
        FigureCanvasAgg(figure)
        bars = figure.add_subplot()
        bars.bar(
            [x - width / 2 for x in positions],
            [point.received for point in series],
            width,
            label=labels["received"],
            color=_RECEIVED_COLOUR,
        )
        bars.bar(
            [x + width / 2 for x in positions],
            [point.fixed for point in series],
            width,
            label=labels["fixed"],
            color=_FIXED_COLOUR,
        )
        bars.set_xticks(positions, ticks)
        bars.set_xlabel(labels["period_axis"])
        bars.set_ylabel(labels["reports_axis"])
        bars.yaxis.set_major_locator(MaxNLocator(integer=True))
        bars.set_title(labels["title"])
        line = bars.twinx()
        # NaN leaves a gap where a period had no ratings.
        line.plot(
            positions,
            [float("nan") if point.csat is None else point.csat * 100 for point in series],
            marker="o",
            color=_CSAT_COLOUR,
            label=labels["csat"],
        )
        line.set_ylim(0, 100)
        line.yaxis.set_major_formatter(PercentFormatter(100))
        line.set_ylabel(labels["csat_axis"])
        handles, names = bars.get_legend_handles_labels()
        line_handles, line_names = line.get_legend_handles_labels()
        bars.legend(handles + line_handles, names + line_names, loc="upper left", fontsize="small")
        output = io.BytesIO()
        figure.savefig(output, format="png")
    return output.getvalue()


async def render_chart(
    series: Sequence[SeriesPoint], language: str, *, translator: Translator | None = None
) -> bytes:
    """The chart of ``series`` (oldest first) as PNG bytes, labelled in ``language``.

    ``translator`` defaults to the bundled catalogues; pass the application's.
    """
    if translator is None:
        translator = await asyncio.to_thread(Translator.load, "en")
    language = translator.resolve_language(language)
    labels = _labels(translator, language)
    return await asyncio.to_thread(_draw, list(series), language, labels)
