"""How follow-ups and their use cases write about reports and shifts: in the reader's
language and time zone. No imports from the conversation layer, so calls may use it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo

from babel.dates import format_date, format_datetime

from bot.i18n import Translator
from storage.records import ReportRecord
from storage.repositories.followups import SignupSubject


def local_moment(moment: datetime, language: str, zone: tzinfo) -> str:
    """A date and time as citizens read it, e.g. ``Sat 5 Dec, 09:30``."""
    return format_datetime(moment.astimezone(zone), "EEE d MMM, HH:mm", locale=language)


def local_clock(moment: datetime, language: str, zone: tzinfo) -> str:
    """A time of day, e.g. ``12:30``."""
    return format_datetime(moment.astimezone(zone), "HH:mm", locale=language)


def local_date(moment: datetime, language: str, zone: tzinfo) -> str:
    """A date, e.g. ``5 Dec 2026``."""
    return format_date(moment.astimezone(zone), "d MMM y", locale=language)


def label(names: Mapping[str, str], language: str) -> str:
    """A name in ``language``, else in any language there is."""
    return names.get(language) or next(iter(names.values()), "")


def report_place(report: ReportRecord, language: str, translator: Translator) -> str:
    """Where a report is, as a citizen would read it."""
    if report.address:
        return report.address
    if report.latitude is not None and report.longitude is not None:
        return f"{report.latitude:.5f}, {report.longitude:.5f}"
    return translator.text(language, "report.no_place")


def shift_hours(subject: SignupSubject, language: str) -> str:
    """The planned length of a shift in hours, e.g. ``2.5`` (``2,5`` in French)."""
    hours = round((subject.ends_at - subject.starts_at).total_seconds() / 3600, 2)
    text = f"{hours:g}"
    return text.replace(".", ",") if language == "fr" else text
