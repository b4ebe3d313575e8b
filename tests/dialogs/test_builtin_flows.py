"""The shipped flows: they validate, and a fake host can drive each path to its end."""

from __future__ import annotations

import pytest

from dialogs import (
    FlowError,
    LocationInput,
    PhotoInput,
    Status,
    builtin_registry,
    check_html,
    load_builtin_flows,
)
from dialogs.models import Flow
from dialogs.texts import SystemText
from tests.dialogs.support import Host

LANGUAGES = ["en", "fr"]


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return load_builtin_flows(registry=builtin_registry())


# Flows only follow-ups start (dialogs/campaigns): no command, no menu button.
FOLLOW_UP_FLOWS = ("after_shift", "fixed_check")


def test_every_shipped_flow_validates(flows: dict[str, Flow]) -> None:
    assert sorted(flows) == ["after_shift", "fixed_check", "rate", "report", "volunteer"]
    menu = [flow for flow in flows.values() if flow.id not in FOLLOW_UP_FLOWS]
    for flow in flows.values():
        assert flow.languages == ("en", "fr")
    for flow in menu:
        assert flow.menu_label("fr")
        assert flow.triggers.commands == (flow.id,)
    for flow_id in FOLLOW_UP_FLOWS:
        assert flows[flow_id].menu_label("en") is None
        assert flows[flow_id].triggers.commands == ()
        assert not flows[flow_id].triggers.keywords
    orders = [flow.triggers.order for flow in menu]
    assert len(set(orders)) == len(orders)


def test_shipped_flows_need_the_languages_they_are_loaded_with() -> None:
    with pytest.raises(FlowError) as caught:
        load_builtin_flows(registry=builtin_registry(), languages=("en", "fr", "nl"))
    assert "dialogs/flows/rate.yaml:7: title: missing translation for nl" in str(caught.value)


def test_shipped_flows_match_keywords(flows: dict[str, Flow]) -> None:
    assert flows["report"].matches_keyword("There is a huge POTHOLE here", "en")
    assert flows["volunteer"].matches_keyword("je voudrais être bénévole", "fr")
    assert not flows["rate"].matches_keyword("hello", "en")


def finish(h: Host) -> None:
    assert h.status is Status.FINISHED
    for message in h.messages:
        assert check_html(message.text) is None, message.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_with_a_pin_photos_and_no_duplicate(flows: dict[str, Flow], language: str) -> None:
    h = Host(flows["report"], language=language)
    h.start()
    assert h.calls[0].name == "categories"
    h.press("o0")
    h.send(LocationInput(50.8466, 4.3528))
    h.send(PhotoInput("p1", "u1"))
    h.send(PhotoInput("p2", "u2"))
    h.send(h.label(SystemText.DONE))
    h.send("The streetlight <b>flickers</b> all night & day")
    h.press("y")
    assert h.calls[-1].name == "nearby_open_reports"
    assert h.calls[-1].params == {"category": "roads", "latitude": 50.8466, "longitude": 4.3528}
    summary = h.text()
    assert "&lt;b&gt;flickers&lt;/b&gt; all night &amp; day" in summary
    h.press("sb")
    finish(h)
    create = h.calls[-1]
    assert create.name == "create_report"
    assert create.params["photos"] == [
        {"file_id": "p1", "file_unique_id": "u1"},
        {"file_id": "p2", "file_unique_id": "u2"},
    ]
    assert create.params["anonymous"] is True
    assert "R-0042" in h.text()
    assert "5" in h.text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_me_too_follows_the_existing_report(flows: dict[str, Flow], language: str) -> None:
    nearby = {
        "count": 1,
        "first": {"reference": "R-0007", "category": "Roads", "distance_m": 35, "supporters": 3},
    }
    h = Host(flows["report"], language=language, answers={"nearby_open_reports": nearby})
    h.start()
    h.press("o0")
    h.send(LocationInput(50.0, 4.0))
    h.send(h.label(SystemText.SKIP))
    h.send("Deep pothole in front of number 12")
    h.press("n")
    assert "R-0007" in h.text()
    assert "35" in h.text()
    h.press("o0")
    finish(h)
    assert [call.name for call in h.calls][-1] == "follow_report"
    assert h.calls[-1].params == {"reference": "R-0007"}
    assert "R-0007" in h.text()
    assert "4" in h.text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_different_problem_goes_on_to_the_summary(
    flows: dict[str, Flow], language: str
) -> None:
    nearby = {"count": 2, "first": {"reference": "R-1", "distance_m": 10, "supporters": 1}}
    h = Host(flows["report"], language=language, answers={"nearby_open_reports": nearby})
    h.start()
    h.press("o2")
    h.send(LocationInput(50.0, 4.0))
    h.send(h.label(SystemText.SKIP))
    h.send("Overflowing bins")
    h.press("n")
    h.press("o1")
    assert h.buttons()[-3][1].endswith(":sb")
    h.press("sb")
    finish(h)
    assert h.calls[-1].name == "create_report"


@pytest.mark.parametrize("language", LANGUAGES)
def test_report_with_a_typed_address_skips_the_duplicate_check(
    flows: dict[str, Flow], language: str
) -> None:
    h = Host(flows["report"], language=language)
    h.start()
    h.press("o1")
    h.send("Rue de la Loi 16, Brussels")
    h.send(h.label(SystemText.SKIP))
    h.send("Broken bench")
    h.press("n")
    assert "nearby_open_reports" not in [call.name for call in h.calls]
    h.press("e3")  # edit the description
    h.send("Broken bench near the fountain")
    h.press("sb")
    finish(h)
    assert h.calls[-1].params["location"] == {
        "latitude": None,
        "longitude": None,
        "address": "Rue de la Loi 16, Brussels",
    }
    assert h.calls[-1].params["description"] == "Broken bench near the fountain"
    assert h.calls[-1].params["photos"] is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_volunteer_first_time(flows: dict[str, Flow], language: str) -> None:
    h = Host(flows["volunteer"], language=language)
    h.start()
    assert len(h.result.messages) == 2  # type: ignore[union-attr]
    h.press("o0")
    h.press("o3")
    h.press("ok")
    h.press("o5")
    h.press("ok")
    h.press("o4")
    h.press("o1")
    h.press("ok")
    h.press("y")
    save = next(call for call in h.calls if call.name == "save_volunteer_profile")
    assert save.params == {
        "skills": ["green_spaces", "elderly"],
        "areas": ["anywhere"],
        "availability": ["weekday_afternoon", "weekend_afternoon"],
        "contact_consent": True,
    }
    assert h.calls[-1].name == "opportunities"
    assert h.calls[-1].params == {"skills": ["green_spaces", "elderly"], "areas": ["anywhere"]}
    assert not any(data.endswith(":bk") for _, data in h.buttons())  # the profile is saved
    h.press("pn")
    h.press("o6")
    finish(h)
    assert h.calls[-1].params == {"opportunity": "opp6"}
    assert "Park clean-up" in h.text()
    assert "2025" in h.text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_volunteer_with_a_profile_gets_on_the_waiting_list(
    flows: dict[str, Flow], language: str
) -> None:
    answers = {
        "volunteer_profile": {"exists": True, "skills": ["food"], "areas": ["north"]},
        "volunteer_signup": {"status": "waitlisted", "position": 3, "title": "Food bank"},
    }
    h = Host(flows["volunteer"], language=language, answers=answers)
    h.start()
    h.press("o0")
    assert h.calls[-1].params == {"skills": ["food"], "areas": ["north"]}
    h.press("o2")
    finish(h)
    assert "3" in h.text()
    assert "Food bank" in h.text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_volunteer_update_and_no_match(flows: dict[str, Flow], language: str) -> None:
    answers = {
        "volunteer_profile": {"exists": True, "skills": ["food"], "areas": ["north"]},
        "opportunities": {"options": []},
    }
    h = Host(flows["volunteer"], language=language, answers=answers)
    h.start()
    h.press("o1")
    for _ in range(3):
        h.press("o2")
        h.press("ok")
    h.press("n")
    finish(h)
    assert h.calls[-1].name == "opportunities"
    assert h.calls[-1].params == {"skills": ["tutoring"], "areas": ["east"]}
    assert "💚" in h.text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_rate_the_long_way(flows: dict[str, Flow], language: str) -> None:
    h = Host(flows["rate"], language=language)
    h.start()
    assert h.calls[0].name == "services"
    h.press("o1")
    h.press("r4")
    h.press("y")
    h.press("r5")
    h.press("sk")
    for _ in range(3):
        h.press("r3")
    h.press("r6")
    h.press("r9")
    h.send("Friendly staff, <i>slow</i> website")
    finish(h)
    record = h.calls[-1]
    assert record.name == "record_rating"
    assert record.params == {
        "service": "permits",
        "overall": 4,
        "timeliness": 5,
        "knowledge": None,
        "courtesy": 3,
        "fairness": 3,
        "outcome": 3,
        "effort": 6,
        "nps": 9,
        "comment": "Friendly staff, <i>slow</i> website",
        "report": None,
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_rate_prefilled_and_short(flows: dict[str, Flow], language: str) -> None:
    h = Host(flows["rate"], language=language)
    h.start(prefill={"service": "library", "report": "R-0042"})
    assert h.calls == []
    h.press("r2")
    h.press("n")
    h.press("sk")
    finish(h)
    assert h.calls[-1].params == {
        "service": "library",
        "overall": 2,
        "timeliness": None,
        "knowledge": None,
        "courtesy": None,
        "fairness": None,
        "outcome": None,
        "effort": None,
        "nps": None,
        "comment": None,
        "report": "R-0042",
    }


def test_every_declared_call_is_used_by_a_shipped_flow(flows: dict[str, Flow]) -> None:
    used: set[str] = set()
    for flow in flows.values():
        for step in flow.steps:
            call = getattr(step, "call", None)
            source = getattr(step, "options_from", None)
            used |= {call} if isinstance(call, str) else set()
            used |= {source.query} if source is not None else set()
    assert used == set(builtin_registry().names())
