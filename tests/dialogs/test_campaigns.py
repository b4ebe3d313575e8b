"""Campaign rules as data: the loader's problems with their lines, offsets, windows, and
the two flows that follow-ups start."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialogs import (
    FlowError,
    PhotoInput,
    Status,
    SystemText,
    builtin_registry,
    load_builtin_flows,
)
from dialogs.campaigns import (
    Campaigns,
    Window,
    load_builtin_campaigns,
    load_campaign,
    parse_offset,
)
from dialogs.models import Flow
from tests.dialogs.support import Host

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(scope="module")
def flows() -> dict[str, Flow]:
    return load_builtin_flows(registry=builtin_registry())


@pytest.fixture(scope="module")
def campaigns(flows: dict[str, Flow]) -> Campaigns:
    return load_builtin_campaigns(flows=flows)


def problems(text: str, flows: dict[str, Flow] | None = None) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_campaign(text, filename="c.yaml", flows=flows)
    return [str(problem) for problem in caught.value.problems]


def test_the_shipped_rules(campaigns: Campaigns) -> None:
    assert sorted(campaigns.rules) == [
        "after_shift",
        "fixed_check_after_fix",
        "fixed_check_open",
        "fixed_check_reopened",
        "rate_after_fix",
        "shift_reminder_24h",
        "shift_reminder_2h",
    ]
    open_check = campaigns.rules["fixed_check_open"]
    assert open_check.event == "report_created"
    assert open_check.offset == timedelta(days=28)
    assert str(open_check.window) == "09:00-20:00"
    assert open_check.start_flow is not None
    assert open_check.start_flow.flow == "fixed_check"
    reminders = campaigns.for_event("shift_start")
    assert [rule.offset for rule in reminders] == [-timedelta(hours=24), -timedelta(hours=2)]
    assert all(rule.deadline == timedelta(0) and rule.message for rule in reminders)
    assert campaigns.files["after_shift"] == "dialogs/campaigns/volunteering.yaml"
    assert {rule.subject for rule in campaigns.for_subject("signup")} == {"signup"}


def test_the_shipped_rules_need_the_languages_they_are_loaded_with(
    flows: dict[str, Flow],
) -> None:
    with pytest.raises(FlowError) as caught:
        load_builtin_campaigns(languages=("en", "fr", "nl"), flows=flows)
    assert (
        "dialogs/campaigns/volunteering.yaml:16: rule 'shift_reminder_24h': message.text:"
        " missing translation for nl"
    ) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("28d", timedelta(days=28)),
        ("-24h", -timedelta(hours=24)),
        ("+3d", timedelta(days=3)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("0m", timedelta(0)),
        (" - 2 h ", -timedelta(hours=2)),
    ],
)
def test_offsets(text: str, expected: timedelta) -> None:
    assert parse_offset(text) == expected


@pytest.mark.parametrize("text", ["", "28", "d", "3x", "1.5h", "--2h", "500d", 3])
def test_bad_offsets(text: object) -> None:
    with pytest.raises(ValueError, match=r"offset|days away"):
        parse_offset(text)


def test_a_window_moves_the_night_to_the_next_morning() -> None:
    window = Window.model_validate("09:00-20:00")
    evening = datetime(2026, 1, 5, 20, 30, tzinfo=PARIS)
    assert window.next_delivery(evening) == datetime(2026, 1, 6, 9, 0, tzinfo=PARIS)
    early = datetime(2026, 1, 6, 6, 15, tzinfo=PARIS)
    assert window.next_delivery(early) == datetime(2026, 1, 6, 9, 0, tzinfo=PARIS)
    day = datetime(2026, 1, 6, 19, 59, tzinfo=PARIS)
    assert window.next_delivery(day) == day
    assert window.contains(time(9, 0)) and not window.contains(time(20, 0))


def test_a_window_may_run_past_midnight_or_be_always() -> None:
    night_shift = Window.model_validate("22:00-06:00")
    assert night_shift.contains(time(23, 0)) and night_shift.contains(time(5, 59))
    noon = datetime(2026, 1, 6, 12, 0, tzinfo=UTC)
    assert night_shift.next_delivery(noon) == datetime(2026, 1, 6, 22, 0, tzinfo=UTC)
    always = Window.model_validate("always")
    assert always.always and always.next_delivery(noon) == noon and str(always) == "always"


def test_the_window_start_is_a_wall_clock_time_across_a_change_of_hour() -> None:
    window = Window.model_validate("09:00-20:00")
    # The night of 28-29 March 2026 is one hour shorter in Paris.
    night = datetime(2026, 3, 28, 22, 0, tzinfo=PARIS)
    delivered = window.next_delivery(night)
    assert delivered == datetime(2026, 3, 29, 9, 0, tzinfo=PARIS)
    assert delivered.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["9-20", "25:00-20:00", "09:60-10:00", "10:00-10:00", "x"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match=r"window|empty"):
        Window.model_validate(text)


def test_every_problem_of_a_campaign_with_its_line(flows: dict[str, Flow]) -> None:
    text = """\
rules:
  - id: reminder
    event: shift_start
    offset: -2h
    deadline: -3h
    if: report.open
    window: "25:00-20:00"
    message:
      text: {en: "Hi {opportunity.nope} <b>x"}
      buttons:
        - label: {en: "Go", fr: "Allez"}
          action: explode
  - id: reminder
    event: report_created
    offset: 1d
    when_busy: skip
    wait: {every: 1h}
    start_flow: {flow: nope}
  - id: both
    event: report_created
    offset: 28x
    start_flow: {flow: rate}
    message: {text: {en: a, fr: b}}
  - id: prefill
    event: report_fixed
    offset: 3d
    start_flow:
      flow: rate
      prefill: {zzz: report.reference, report: report.bad, service: signup.id}
"""
    assert problems(text, flows) == [
        "c.yaml:5: rule 'reminder': deadline: the deadline (-3h) is not after the offset (-2h):"
        " the follow-up could never be sent",
        "c.yaml:6: rule 'reminder': if: unknown name 'report.open': a rule on shift_start reads"
        " signup., opportunity., profile. followed by a field",
        "c.yaml:7: rule 'reminder': window: '25:00-20:00' is not a window such as 09:00-20:00"
        " (or always)",
        "c.yaml:9: rule 'reminder': message.text: missing translation for fr",
        "c.yaml:9: rule 'reminder': message.text.en: bad HTML: tag <b> is never closed",
        "c.yaml:9: rule 'reminder': message.text.en: 'opportunity.nope' is not a known field"
        " (known: code, title, place, when, until, status, scheduled)",
        "c.yaml:12: rule 'reminder': message.buttons[0].action: unknown action 'explode' for a"
        " signup (known: cant_come)",
        "c.yaml:13: rule 'reminder': the id 'reminder' is used twice (first at line 2)",
        "c.yaml:17: rule 'reminder': wait: 'wait' only applies with when_busy: wait",
        "c.yaml:18: rule 'reminder': start_flow.flow: unknown flow 'nope' (known: after_shift,"
        " fixed_check, rate, report, volunteer)",
        "c.yaml:19: rule 'both': a rule needs either 'start_flow' or 'message'",
        "c.yaml:21: rule 'both': offset: '28x' is not an offset such as 28d, -24h, 1d12h or 90m",
        "c.yaml:29: rule 'prefill': start_flow.prefill.report: 'report.bad' is not a known field"
        " (known: reference, category, service, status, open, location, created, age_days)",
        "c.yaml:29: rule 'prefill': start_flow.prefill.service: unknown name 'signup.id': a rule"
        " on report_fixed reads report., profile. followed by a field",
        "c.yaml:29: rule 'prefill': start_flow.prefill.zzz: flow 'rate' does not accept prefill"
        " 'zzz' (it takes: service, report)",
    ]


def test_without_flows_only_the_rules_themselves_are_checked() -> None:
    rules = load_campaign(
        "rules:\n  - id: later\n    event: report_created\n    offset: 1d\n"
        "    start_flow: {flow: not_written_yet, prefill: {x: report.reference}}\n",
        filename="c.yaml",
    )
    assert [rule.id for rule in rules] == ["later"]


def test_yaml_reads_on_as_true() -> None:
    text = (
        "rules:\n  - id: r\n    on: report_created\n    offset: 1d\n"
        "    message: {text: {en: a, fr: b}}\n"
    )
    assert problems(text) == [
        "c.yaml:2: rule 'r': missing key 'event'",
        "c.yaml:3: key True must be text; put it in quotes (YAML reads yes/no/on/off as"
        " true/false)",
        "c.yaml:3: rule 'r': unknown key 'True'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["c.yaml:1: the file is empty"]),
        ("~", ["c.yaml:1: a campaign must be a mapping with a list of rules"]),
        ("- a\n- b\n", ["c.yaml:1: a campaign must be a mapping with a list of rules"]),
        (
            "rules: []\n",
            ["c.yaml:1: rules: List should have at least 1 item after validation, not 0"],
        ),
        (
            "rules:\n  - 3\n",
            ["c.yaml:2: rules[0]: a rule must be a mapping with id, event, offset and an action"],
        ),
        ("rule: []\n", ["c.yaml:1: missing key 'rules'", "c.yaml:1: unknown key 'rule'"]),
    ],
)
def test_documents_that_are_not_campaigns(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_an_unknown_event_names_the_known_ones() -> None:
    text = (
        "rules:\n  - id: r\n    event: report_eaten\n    offset: 1d\n"
        "    message: {text: {en: a, fr: b}}\n"
    )
    (problem,) = problems(text)
    assert problem.startswith("c.yaml:3: rule 'r': event: Input should be 'report_created',")


# --- the flows follow-ups start --------------------------------------------------------


def test_is_it_fixed_not_fixed_asks_for_a_comment_and_photos(flows: dict[str, Flow]) -> None:
    h = Host(flows["fixed_check"])
    h.start(prefill={"report": "R-000042"})
    assert h.calls[0].name == "report_summary"
    assert h.calls[0].params == {"reference": "R-000042"}
    question = h.text()
    assert "R-000042" in question and "Street lights" in question and "12 Rue Haute" in question
    assert [text for text, _ in h.buttons()][:4] == [
        "✅ Fixed",
        "🌓 Partly fixed",
        "❌ Not fixed",
        "🤷 Don't know",
    ]
    h.tap("❌ Not fixed")
    assert h.calls[-1].name == "record_fix_answer"
    assert h.calls[-1].params == {"reference": "R-000042", "answer": "not_fixed"}
    assert "reopened report R-000042" in h.text()
    h.send("Still dark every night")
    h.send(PhotoInput("p1", "u1"))
    h.send(h.label(SystemText.DONE))
    assert h.status is Status.FINISHED
    assert h.calls[-1].name == "add_report_details"
    assert h.calls[-1].params == {
        "reference": "R-000042",
        "comment": "Still dark every night",
        "photos": [{"file_id": "p1", "file_unique_id": "u1"}],
    }
    assert "four weeks" in h.text()


@pytest.mark.parametrize(
    ("answer", "ending"), [("✅ Réparé", "Très bien"), ("🤷 Je ne sais pas", "Pas de souci")]
)
def test_is_it_fixed_in_french(flows: dict[str, Flow], answer: str, ending: str) -> None:
    h = Host(flows["fixed_check"], language="fr")
    h.start(prefill={"report": "R-000042"})
    assert "Est-ce réparé" in h.text()
    h.tap(answer)
    assert h.status is Status.FINISHED
    assert ending in h.text()


def test_is_it_fixed_about_a_report_that_is_gone(flows: dict[str, Flow]) -> None:
    h = Host(flows["fixed_check"], answers={"report_summary": {"found": False}})
    h.start(prefill={"report": "R-000001"})
    assert h.status is Status.FINISHED
    assert "no longer available" in h.text()


def test_after_shift_records_hours(flows: dict[str, Flow]) -> None:
    h = Host(flows["after_shift"])
    h.start(prefill={"signup": 7})
    assert h.calls[0].params == {"signup": 7}
    assert "Park clean-up" in h.text() and "Were you able to come" in h.text()
    h.press("y")
    assert "planned for 3 h" in h.text()
    h.send("2,5")
    assert h.status is Status.FINISHED
    assert h.calls[-1].name == "record_attendance"
    assert h.calls[-1].params == {"signup": 7, "attended": True, "hours": 2.5}


def test_after_shift_when_they_could_not_come(flows: dict[str, Flow]) -> None:
    h = Host(flows["after_shift"], language="fr")
    h.start(prefill={"signup": 7})
    h.press("n")
    assert h.status is Status.FINISHED
    assert h.calls[-1].params == {"signup": 7, "attended": False, "hours": None}
    assert "prochaine mission" in h.text()
