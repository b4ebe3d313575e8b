"""The engine, one step kind at a time."""

from __future__ import annotations

from datetime import timedelta, timezone

from dialogs import (
    ButtonInput,
    CallKind,
    CommandInput,
    Engine,
    LocationInput,
    PhotoInput,
    Status,
    TextInput,
    UnsupportedInput,
)
from tests.dialogs.support import NOW, Host, context, make_flow

END = """\
  - id: end
    kind: end
    text: {en: "Done: {answers.x}", fr: "Fini : {answers.x}"}
"""


def host(steps: str, *, end: str = END, **kwargs: object) -> Host:
    """A fake host on a flow in English and French (French texts where the test needs them)."""
    languages = ("en", "fr") if "language" in kwargs else ("en",)
    flow = make_flow(steps + end, languages=languages)
    return Host(flow, **kwargs)  # type: ignore[arg-type]


def test_message_steps_go_on_to_the_next_question() -> None:
    h = host(
        """\
  - id: hello
    kind: message
    text: {en: "Hello <b>{profile.first_name}</b>"}
  - id: x
    kind: text
    name: x
    prompt: {en: "Your name?"}
""",
        ctx=context(profile={"first_name": "<Ann>"}),
    )
    result = h.start()
    assert result.status is Status.WAITING
    assert [m.text for m in result.messages] == ["Hello <b>&lt;Ann&gt;</b>", "Your name?"]
    assert h.buttons() == [("✖️ Cancel", "d:1:cx")]


def test_single_choice_by_button_or_by_typing_its_label() -> None:
    steps = """\
  - id: x
    kind: choice
    name: x
    columns: 2
    prompt: {en: "Pick one"}
    options:
      - {value: red, label: {en: Red}}
      - {value: blue, label: {en: Blue}}
      - {value: green, label: {en: Green}}
"""
    h = host(steps)
    h.start()
    assert [[b.text for b in row] for row in h.last().inline] == [
        ["Red", "Blue"],
        ["Green"],
        ["✖️ Cancel"],
    ]
    h.tap("Blue")
    assert h.status is Status.FINISHED
    assert h.state.answers == {"x": "blue"}
    assert h.text() == "Done: Blue"

    h = host(steps)
    h.start()
    h.send(" green ")
    assert h.state.answers == {"x": "green"}

    h = host(steps)
    h.start()
    result = h.send("purple")
    assert not result.accepted
    assert result.changed
    assert h.text().startswith("Please tap one of the buttons.\n\nPick one")
    assert h.state.failures == 1


def test_choice_options_from_a_query() -> None:
    h = host(
        """\
  - id: x
    kind: choice
    name: x
    prompt: {en: "Category?", fr: "Catégorie ?"}
    options_from: {query: categories}
""",
        language="fr",
    )
    result = h.engine.start(h.flow, h.ctx)
    assert result.status is Status.CALLING
    assert result.call is not None
    assert (result.call.name, result.call.kind, result.call.params) == (
        "categories",
        CallKind.QUERY,
        {},
    )
    assert result.messages == []
    h.start()
    assert [text for text, _ in h.buttons()] == ["Voirie", "Éclairage", "Déchets", "✖️ Annuler"]
    h.tap("Éclairage")
    assert h.state.answers == {"x": "lighting"}
    assert h.state.labels == {"x": "Éclairage"}


def test_empty_options_go_to_if_empty_or_end_the_conversation() -> None:
    steps = """\
  - id: x
    kind: choice
    name: x
    prompt: {en: "Which?"}
    options_from: {query: opportunities, if_empty: none}
    next: end
  - id: none
    kind: end
    text: {en: "Nothing for you today."}
"""
    h = host(steps, answers={"opportunities": {"options": []}})
    h.start()
    assert h.status is Status.FINISHED
    assert h.text() == "Nothing for you today."

    steps = steps.replace(", if_empty: none", "").replace("next: end", "next: none")
    h = host(steps, end="", answers={"opportunities": {"options": []}})
    h.start()
    assert h.status is Status.CANCELLED
    assert h.text() == "There is nothing to choose from right now, sorry. Please try again later."


def test_malformed_options_from_the_host_are_dropped() -> None:
    options = [
        {"value": "a", "label": "A"},
        {"value": "a", "label": "duplicate"},
        {"label": "no value"},
        "not a mapping",
        {"value": 7, "label": {"en": "Seven"}},
        {"value": "b"},
    ]
    h = host(
        """\
  - id: x
    kind: choice
    name: x
    prompt: {en: "Which?"}
    options_from: {query: services}
""",
        answers={"services": {"options": options}},
    )
    h.start()
    assert [text for text, _ in h.buttons()] == ["A", "Seven", "b", "✖️ Cancel"]


def test_multiple_choice_toggles_in_place_and_checks_bounds() -> None:
    h = host(
        """\
  - id: x
    kind: choice
    name: x
    multiple: true
    min: 2
    max: 3
    prompt: {en: "Pick some"}
    options:
      - {value: a, label: {en: A}}
      - {value: b, label: {en: B}}
      - {value: c, label: {en: C}}
      - {value: d, label: {en: D}}
"""
    )
    h.start()
    assert "Tap all that apply, then “✅ Done”." in h.text()
    result = h.tap("C")
    assert result.accepted
    assert result.messages[0].edit_previous
    assert [text for text, _ in h.buttons()][:5] == ["A", "B", "✅ C", "D", "✅ Done"]
    result = h.tap("✅ Done")
    assert not result.accepted
    assert h.text().startswith("Please choose at least 2.")
    h.tap("A")
    h.tap("D")
    result = h.tap("B")
    assert h.text().startswith("You can choose up to 3.")
    h.tap("✅ D")
    assert h.state.draft == ("c", "a")
    h.tap("✅ Done")
    assert h.state.answers == {"x": ["a", "c"]}
    assert h.text() == "Done: A, C"


def test_paging_shows_page_size_options_with_prev_and_next() -> None:
    options = "".join(f"      - {{value: v{i}, label: {{en: 'Option {i}'}}}}\n" for i in range(20))
    h = host(
        """\
  - id: x
    kind: choice
    name: x
    prompt: {en: "Pick"}
    options:
"""
        + options
    )
    h.start()
    labels = [text for text, _ in h.buttons()]
    assert labels == [f"Option {i}" for i in range(8)] + ["More ▶️", "✖️ Cancel"]
    assert "Page 1 of 3" in h.text()
    result = h.tap("More ▶️")
    assert result.messages[0].edit_previous
    labels = [text for text, _ in h.buttons()]
    assert labels == [f"Option {i}" for i in range(8, 16)] + ["◀️ Previous", "More ▶️", "✖️ Cancel"]
    h.tap("More ▶️")
    assert [text for text, _ in h.buttons()][:4] == [f"Option {i}" for i in range(16, 20)]
    assert "Page 3 of 3" in h.text()
    h.tap("Option 17")
    assert h.state.answers == {"x": "v17"}


def test_paged_dynamic_options_list_their_details() -> None:
    h = host(
        """\
  - id: x
    kind: choice
    name: x
    page_size: 5
    prompt: {en: "Opportunities"}
    options_from: {query: opportunities}
"""
    )
    h.start()
    assert "<b>1. Park clean-up #0</b>\nSaturday 10:00, Central Park" in h.text()
    assert "<b>6." not in h.text()
    h.tap("More ▶️")
    assert "<b>6. Park clean-up #5</b>" in h.text()
    h.tap("Park clean-up #6")
    assert h.state.answers == {"x": "opp6"}


def test_text_length_bounds() -> None:
    h = host(
        """\
  - id: x
    kind: text
    name: x
    min_length: 5
    max_length: 10
    prompt: {en: "Describe"}
"""
    )
    h.start()
    h.send("   abc  ")
    assert h.text().startswith("Please write at least 5 characters.")
    h.send("a" * 12)
    assert h.text().startswith("That is 12 characters; please keep it to 10.")
    h.send(PhotoInput("f", "u"))
    assert h.text().startswith("Please type your answer as a message.")
    h.send("  hello you ")
    assert h.state.answers == {"x": "hello you"}


def test_numbers_accept_a_decimal_comma() -> None:
    steps = """\
  - id: x
    kind: number
    name: x
    integer: false
    min: 0
    max: 2000
    prompt: {en: "How much?", fr: "Combien ?"}
"""
    for language, typed, expected, shown in [
        ("en", "3,5", 3.5, "3.5"),
        ("fr", "3,5", 3.5, "3,5"),
        ("en", "1,000", 1000, "1,000"),
        ("en", " 12 ", 12, "12"),
        ("fr", "1 500", 1500, "1\u202f500"),
        ("en", ".5", 0.5, "0.5"),
    ]:
        h = host(steps, language=language)
        h.start()
        h.send(typed)
        assert h.state.answers == {"x": expected}, (language, typed)
        assert h.state.labels == {"x": shown}, (language, typed)

    h = host(steps, language="en")
    h.start()
    h.send("lots")
    assert h.text().startswith("Please send a number, like 12 or 3.5.")
    h.send("2001")
    assert h.text().startswith("Please send a number from 0 to 2,000.")
    h.send("NaN")
    assert h.state.failures == 3


def test_integer_numbers() -> None:
    h = host(
        """\
  - id: x
    kind: number
    name: x
    min: 1
    prompt: {en: "How many?"}
"""
    )
    h.start()
    h.send("2.5")
    assert h.text().startswith("Please send a whole number.")
    h.send("0")
    assert h.text().startswith("Please send a number of at least 1.")
    h.send("4.0")
    assert h.state.answers == {"x": 4}


def test_rating_scales() -> None:
    h = host(
        """\
  - id: x
    kind: rating
    name: x
    prompt: {en: "Rate"}
    low_label: {en: bad}
    high_label: {en: great}
"""
    )
    h.start()
    assert h.last().inline[0] == tuple(h.last().inline[0])
    assert [b.text for b in h.last().inline[0]] == ["1", "2", "3", "4", "5"]
    assert "<i>1 = bad · 5 = great</i>" in h.text()
    h.send("6")
    assert h.text().startswith("Please tap a number from 1 to 5.")
    h.tap("4")
    assert h.state.answers == {"x": 4}
    assert h.state.labels == {"x": "4/5"}

    h = host(
        """\
  - id: x
    kind: rating
    name: x
    scale: 0-10
    prompt: {en: "Recommend?"}
"""
    )
    h.start()
    rows = h.last().inline
    assert [[b.text for b in row] for row in rows[:2]] == [
        ["0", "1", "2", "3", "4", "5"],
        ["6", "7", "8", "9", "10"],
    ]
    h.send(" 0 ")
    assert h.state.answers == {"x": 0}


def test_yes_no_by_button_or_word() -> None:
    steps = """\
  - id: x
    kind: yesno
    name: x
    prompt: {en: "OK?", fr: "D'accord ?"}
"""
    h = host(steps, language="fr")
    h.start()
    assert [text for text, _ in h.buttons()][:2] == ["Oui", "Non"]
    h.send("peut-être")
    assert h.text().startswith("Merci de toucher « Oui » ou « Non ».")
    h.send("OUI")
    assert h.state.answers == {"x": True}
    assert h.text() == "Fini : Oui"

    h = host(steps, language="en")
    h.start()
    h.tap("No")
    assert h.state.answers == {"x": False}


def test_location_pin_or_typed_address() -> None:
    steps = """\
  - id: x
    kind: location
    name: x
    allow_address: true
    optional: true
    prompt: {en: "Where?"}
  - id: y
    kind: yesno
    name: y
    prompt: {en: "Sure?"}
"""
    h = host(steps)
    h.start()
    question = h.last()
    assert question.inline == ()
    assert [[(b.text, b.request_location) for b in row] for row in question.reply_keyboard] == [
        [("📍 Send my location", True)],
        [("Skip ➡️", False)],
        [("✖️ Cancel", False)],
    ]
    assert "Tap “📍 Send my location” below, or type the address." in question.text
    result = h.send(LocationInput(50.85, 4.35))
    assert result.messages[0].text == "📍 Thanks, got the location."
    assert result.messages[0].remove_keyboard
    assert result.messages[1].text == "Sure?"
    assert h.state.answers == {"x": {"latitude": 50.85, "longitude": 4.35}}
    assert h.state.keyboard_step is None

    h = host(steps)
    h.start()
    h.send("ab")
    assert h.text().startswith("Please type a little more of the address.")
    h.send("  Rue de la   Loi 16 ")
    assert h.state.answers == {"x": {"address": "Rue de la Loi 16"}}

    h = host(steps)
    h.start()
    h.send(LocationInput(123.0, 4.0))
    assert h.text().startswith("Please tap “📍 Send my location”, or type the address.")
    h.send("Skip ➡️")
    assert h.state.answers == {"x": None}
    assert h.result is not None
    assert h.result.messages[0].remove_keyboard


def test_location_without_address() -> None:
    h = host(
        """\
  - id: x
    kind: location
    name: x
    prompt: {en: "Where?"}
"""
    )
    h.start()
    assert [len(row) for row in h.last().reply_keyboard] == [1, 1]
    h.send("Main street")
    assert h.text().startswith("Please tap “📍 Send my location” to share the place.")
    h.send("Skip ➡️")
    assert h.text().startswith("This question needs an answer.")


def test_photos_one_after_the_other_then_done() -> None:
    steps = """\
  - id: x
    kind: photo
    name: x
    max: 3
    prompt: {en: "Photos?"}
"""
    h = host(steps)
    h.start()
    keyboard = [[b.text for b in row] for row in h.last().reply_keyboard]
    assert keyboard == [["✖️ Cancel"]]
    h.send("✅ Done")
    assert h.text().startswith("Please send at least one photo.")
    result = h.send(PhotoInput("file-1", "u1"))
    assert result.messages[0].text == ("Photo 1 of 3 received. Send another one, or tap “✅ Done”.")
    assert [[b.text for b in row] for row in result.messages[0].reply_keyboard] == [
        ["✅ Done"],
        ["✖️ Cancel"],
    ]
    h.send(PhotoInput("file-1-again", "u1"))
    assert h.state.draft == ({"file_id": "file-1", "file_unique_id": "u1"},)
    h.send(UnsupportedInput("sticker"))
    assert h.text().startswith("Please send a photo, or tap “✅ Done”.")
    result = h.send("✅ Done")
    assert result.messages[0].text == "📷 Thanks, got the photos."
    assert result.messages[0].remove_keyboard
    assert h.state.answers == {"x": [{"file_id": "file-1", "file_unique_id": "u1"}]}
    assert h.text().endswith("Done: 1 photo")


def test_photos_stop_at_max() -> None:
    h = host(
        """\
  - id: x
    kind: photo
    name: x
    max: 2
    optional: true
    prompt: {en: "Photos?"}
"""
    )
    h.start()
    assert [[b.text for b in row] for row in h.last().reply_keyboard] == [
        ["Skip ➡️"],
        ["✖️ Cancel"],
    ]
    h.send(PhotoInput("a", "ua"))
    h.send(PhotoInput("b", "ub"))
    assert h.status is Status.FINISHED
    assert h.text().endswith("Done: 2 photos")


def test_dates_by_button_or_typed_within_range() -> None:
    steps = """\
  - id: x
    kind: date
    name: x
    earliest: -30
    latest: 0
    prompt: {en: "When did it happen?", fr: "Quand ?"}
"""
    h = host(steps, language="en")
    h.start()
    assert [text for text, _ in h.buttons()] == ["Yesterday", "Today", "✖️ Cancel"]
    assert "Type a date like 14/05/2025, or tap a button." in h.text()
    h.tap("Yesterday")
    assert h.state.answers == {"x": "2025-05-13"}
    assert h.state.labels == {"x": "May 13, 2025"}

    h = host(steps, language="fr")
    h.start()
    h.send("01/06/2025")
    assert h.text().startswith("Merci de choisir une date jusqu'au 14 mai 2025.")
    h.send("01/01/2025")
    assert h.text().startswith("Merci de choisir une date à partir du 14 avril 2025.")
    h.send("30 février")
    assert h.text().startswith("Merci d'envoyer une date comme 14/05/2025.")
    h.tap("🔁 Réessayer")
    h.send("aujourd'hui")
    assert h.state.answers == {"x": "2025-05-14"}
    assert h.state.labels == {"x": "14 mai 2025"}


def test_datetimes_are_read_in_the_context_time_zone() -> None:
    h = host(
        """\
  - id: x
    kind: datetime
    name: x
    earliest: 0
    prompt: {en: "When?"}
"""
    )
    h.start()
    assert [text for text, _ in h.buttons()] == ["✖️ Cancel"]
    h.send("tomorrow")
    assert h.text().startswith("Please send a date and time like 14/05/2025 14:30.")
    h.send(ButtonInput("d:1:t0"))
    assert h.text().startswith("That button belongs to an earlier message.")
    h.send("20/05/2025 18:45")
    assert h.state.answers == {"x": "2025-05-20T18:45:00+00:00"}
    assert h.state.labels == {"x": "May 20, 2025 6:45\u202fPM"}


def test_skip_if_and_branches() -> None:
    h = host(
        """\
  - id: age
    kind: number
    name: age
    prompt: {en: "Age?"}
    next:
      - if: answers.age < 18
        goto: minor
      - goto: x
  - id: minor
    kind: message
    text: {en: "Ask a parent, please."}
  - id: x
    kind: text
    name: x
    prompt: {en: "Name?"}
"""
    )
    h.start()
    h.send("12")
    assert [m.text for m in h.result.messages] == ["Ask a parent, please.", "Name?"]  # type: ignore[union-attr]
    h = host(
        """\
  - id: age
    kind: number
    name: age
    prompt: {en: "Age?"}
  - id: guardian
    kind: text
    name: guardian
    skip_if: answers.age >= 18
    prompt: {en: "Guardian?"}
  - id: x
    kind: text
    name: x
    prompt: {en: "Name?"}
"""
    )
    h.start()
    h.send("40")
    assert h.text() == "Name?"
    assert "guardian" not in h.state.answers


def test_prefill_skips_the_question() -> None:
    flow = make_flow(
        """\
  - id: service
    kind: choice
    name: service
    skip_if: not empty(answers.service)
    prompt: {en: "Which service?"}
    options_from: {query: services}
  - id: x
    kind: rating
    name: x
    prompt: {en: "Rate {answers.service}"}
"""
        + END,
        header="id: demo\nversion: 1\ntitle: {en: Demo}\nprefill: [service]\n",
    )
    h = Host(flow)
    h.start(prefill={"service": "library", "unlisted": "ignored"})
    assert h.calls == []
    assert h.text().startswith("Rate library")
    assert h.state.answers == {"service": "library"}


def test_calls_resolve_parameters_and_store_results() -> None:
    h = host(
        """\
  - id: d
    kind: text
    name: d
    prompt: {en: "Describe"}
  - id: c
    kind: call
    call: create_report
    params:
      category: "'roads'"
      description: answers.d
      anonymous: true
    result: report
  - id: x
    kind: text
    name: x
    prompt: {en: "Report {results.report.reference} within {results.report.target_days} days"}
""",
        ctx=context(preview=True),
    )
    h.start()
    h.send("A hole")
    assert len(h.calls) == 1
    call = h.calls[0]
    assert call.kind is CallKind.ACTION
    assert call.preview
    assert call.params == {
        "category": "roads",
        "location": None,
        "photos": None,
        "description": "A hole",
        "anonymous": True,
    }
    assert h.state.results == {"report": {"reference": "R-0042", "target_days": 5}}
    assert h.text() == "Report R-0042 within 5 days"
    # What the action did cannot be undone: no Back.
    assert [text for text, _ in h.buttons()] == ["✖️ Cancel"]
    h.send(CommandInput("back"))
    assert h.text().startswith("There is no going back from here.")


def test_result_datetimes_are_shown_in_the_citizens_language_and_zone() -> None:
    h = host(
        """\
  - id: c
    kind: call
    call: volunteer_signup
    params: {opportunity: "'p1'"}
    result: signup
  - id: x
    kind: text
    name: x
    prompt: {en: "{results.signup.title}: {results.signup.starts_at}"}
""",
        ctx=context(now=NOW.astimezone(timezone(timedelta(hours=2)))),
    )
    h.start()
    assert h.text() == "Park clean-up: May 17, 2025 12:00\u202fPM"


def test_unknown_commands_and_unsupported_input_say_what_is_expected() -> None:
    h = host(
        """\
  - id: x
    kind: number
    name: x
    prompt: {en: "How many?"}
"""
    )
    h.start()
    h.send(CommandInput("frobnicate"))
    assert h.text().startswith("That command doesn't work here.\n\nHow many?")
    h.send(UnsupportedInput("voice"))
    assert h.text().startswith("Please send a whole number.")


def test_engine_is_reusable_and_stateless() -> None:
    engine = Engine()
    flow = make_flow(
        """\
  - id: x
    kind: text
    name: x
    prompt: {en: "Name?"}
"""
        + END
    )
    first = Host(flow, engine=engine)
    second = Host(flow, engine=engine)
    first.start()
    second.start()
    first.send("Ann")
    second.send("Bob")
    assert first.text() == "Done: Ann"
    assert second.text() == "Done: Bob"


def test_text_input_on_choice_with_no_text_match_keeps_answers() -> None:
    h = host(
        """\
  - id: a
    kind: text
    name: a
    prompt: {en: "First?"}
  - id: x
    kind: yesno
    name: x
    prompt: {en: "Sure?"}
"""
    )
    h.start()
    h.send("first answer")
    h.send(TextInput("maybe"))
    assert h.state.answers == {"a": "first answer"}
