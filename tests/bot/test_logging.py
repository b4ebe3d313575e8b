"""The operator's log: libraries' routine work stays out of it unless asked for."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.cli import CHATTY_LOGGERS, configure_logging


@pytest.fixture
def kept_levels() -> Iterator[None]:
    names = ("", *CHATTY_LOGGERS)  # "": the root logger
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("kept_levels")
def test_routine_library_lines_stay_out_of_an_info_log_but_not_a_debug_one() -> None:
    # Under pytest the root logger has handlers already, so basicConfig sets nothing.
    logging.getLogger().setLevel(logging.INFO)
    configure_logging("INFO")
    # APScheduler's "Running job" and "executed successfully", twice a minute.
    ticks = logging.getLogger("apscheduler.executors.default")
    assert not ticks.isEnabledFor(logging.INFO) and ticks.isEnabledFor(logging.WARNING)
    for name in CHATTY_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    configure_logging("DEBUG")
    for name in CHATTY_LOGGERS:
        assert logging.getLogger(name).level == logging.NOTSET  # the root's level rules
