"""Moving around a conversation: back, cancel, stale buttons, re-prompts, confirm and edit,
state persistence and the host contract (accepted / changed / calls)."""

from __future__ import annotations

import json

from dialogs import (
    ButtonInput,
    CommandInput,
    Engine,
    LocationInput,
    PhotoInput,
    SessionState,
    Status,
    TextInput,
    UnsupportedInput,
)
from tests.dialogs.support import Host, context, make_flow

SURVEY = """\
  - id: name
    kind: text
    name: name
    prompt: {en: "Your name?"}
  - id: colours
    kind: choice
    name: colours
    multiple: true
    optional: true
    prompt: {en: "Favourite colours?"}
    options:
      - {value: red, label: {en: Red}}
      - {value: blue, label: {en: Blue}}
  - id: place
    kind: location
    name: place
    optional: true
    allow_address: true
    prompt: {en: "Where?"}
  - id: nearby
    kind: call
    call: nearby_open_reports
    skip_if: empty(answers.place.latitude)
    params:
      category: "'roads'"
      latitude: answers.place.latitude
      longitude: answers.place.longitude
    result: nearby
  - id: age
    kind: number
    name: age
    optional: true
    prompt: {en: "Age? ({results.nearby.count} open reports nearby)"}
  - id: check
    kind: confirm
    prompt: {en: "<b>Check</b>"}
    summary:
      - {answer: name, label: {en: Name}}
      - {answer: colours, label: {en: Colours}}
      - {answer: place, label: {en: Place}}
      - {answer: age, label: {en: Age}}
  - id: save
    kind: call
    call: follow_report
    params: {reference: answers.name}
  - id: bye
    kind: end
    text: {en: "Thanks {answers.name}!"}
"""


def survey(**kwargs: object) -> Host:
    return Host(make_flow(SURVEY), answers={"nearby_open_reports": {"count": 2}}, **kwargs)  # type: ignore[arg-type]


def test_back_re_asks_the_previous_question_without_its_answer() -> None:
    h = survey()
    h.start()
    assert [text for text, _ in h.buttons()] == ["✖️ Cancel"]
    h.send("Ann")
    assert [text for text, _ in h.buttons()][-2:] == ["⬅️ Back", "✖️ Cancel"]
    h.tap("⬅️ Back")
    assert h.text() == "Your name?"
    assert h.state.answers == {}
    h.send("Bob")
    h.send(CommandInput("back"))
    assert h.text() == "Your name?"
    h.send(CommandInput("back"))
    assert h.text().startswith("There is no going back from here.")


def test_back_from_a_reply_keyboard_step_closes_the_keyboard() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    h.tap("✅ Done")  # no colours: optional, so skipped
    assert h.state.answers == {"name": "Ann", "colours": None}
    assert h.last().reply_keyboard
    result = h.send("⬅️ Back")
    assert [m.text for m in result.messages] == [
        "OK.",
        "Favourite colours?\n\n<i>Tap all that apply, then “✅ Done”.</i>",
    ]
    assert result.messages[0].remove_keyboard
    assert h.state.keyboard_step is None


def test_back_forgets_results_of_calls_made_after_the_question() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    h.tap("✅ Done")
    h.send(LocationInput(50.0, 4.0))
    assert h.state.results == {"nearby": {"count": 2}}
    assert h.text().endswith("Age? (2 open reports nearby)")
    h.tap("⬅️ Back")
    assert h.state.results == {}
    h.send("Rue Haute 1")
    assert h.text().endswith("Age? (— open reports nearby)")
    assert [call.name for call in h.calls] == ["nearby_open_reports"]


def test_cancel_by_command_button_or_reply_keyboard_text() -> None:
    h = survey()
    h.start()
    result = h.send(CommandInput("cancel"))
    assert result.status is Status.CANCELLED
    assert h.text() == "Okay, we stopped here. You can start again whenever you like."

    h = survey()
    h.start()
    stale_cancel = h.buttons()[-1][1]
    h.send("Ann")
    h.send(ButtonInput(stale_cancel))  # Cancel is honoured even from an older message.
    assert h.status is Status.CANCELLED

    h = survey()
    h.start()
    h.send("Ann")
    h.tap("✅ Done")
    result = h.send("✖️ Cancel")
    assert result.status is Status.CANCELLED
    assert result.messages[0].remove_keyboard

    after = h.send("hello?")
    assert after.messages == []
    assert not after.changed
    assert not after.accepted


def test_stale_and_foreign_buttons_re_show_the_question() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    for data in ["d:1:sk", "d:1:bk", "garbage", "d:99:o0", "d:2:zz", "x" * 200, "d:2:o9", ""]:
        result = h.send(ButtonInput(data))
        assert not result.accepted
        assert h.text().startswith("That button belongs to an earlier message.")
        if h.state.failures >= 3:
            h.tap("🔁 Try again")
        else:
            assert "Favourite colours?" in h.text()
    assert h.state.answers == {"name": "Ann"}


def test_three_failures_offer_to_skip_continue_or_cancel() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    h.tap("✅ Done")
    h.send(PhotoInput("f", "u"))
    h.send(UnsupportedInput("sticker"))
    result = h.send(UnsupportedInput("voice"))
    assert not result.accepted
    assert h.state.failures == 3
    assert h.text() == (
        "Please tap “📍 Send my location”, or type the address.\n\n"
        "This question seems tricky. You can try again, skip it, or stop here."
    )
    assert [text for text, _ in h.buttons()] == ["🔁 Try again", "Skip ➡️", "✖️ Cancel"]
    h.tap("🔁 Try again")
    assert h.state.failures == 0
    assert h.text().startswith("Where?")
    for _ in range(3):
        h.send(UnsupportedInput("sticker"))
    h.tap("Skip ➡️")
    assert h.state.answers["place"] is None
    assert "Age?" in h.text()


def test_a_required_question_offers_no_skip() -> None:
    h = survey()
    h.start()
    for _ in range(3):
        h.send("")
    assert [text for text, _ in h.buttons()] == ["🔁 Try again", "✖️ Cancel"]
    h.send(CommandInput("skip"))
    assert h.text().startswith("This question needs an answer.")


def test_confirm_edit_returns_to_the_summary() -> None:
    h = survey()
    h.start()
    h.send("<Ann & co>")
    h.tap("Blue")
    h.tap("✅ Done")
    h.send("Grand-Place")
    h.send("42")
    assert h.text() == (
        "<b>Check</b>\n\n<b>Name</b>: &lt;Ann &amp; co&gt;\n<b>Colours</b>: Blue\n"
        "<b>Place</b>: Grand-Place\n<b>Age</b>: 42"
    )
    assert [text for text, _ in h.buttons()] == [
        "✏️ Name",
        "✏️ Colours",
        "✏️ Place",
        "✏️ Age",
        "✅ Send",
        "⬅️ Back",
        "✖️ Cancel",
    ]
    h.tap("✏️ Colours")
    assert [text for text, _ in h.buttons()][:2] == ["Red", "✅ Blue"]
    h.tap("Red")
    h.tap("✅ Done")
    assert h.text().startswith("<b>Check</b>")
    assert "<b>Colours</b>: Red, Blue" in h.text()

    h.tap("✏️ Age")
    h.tap("⬅️ Back")  # leaves the edit, keeps the answer
    assert h.text().startswith("<b>Check</b>")
    assert h.state.answers["age"] == 42

    h.tap("✏️ Place")
    assert h.last().reply_keyboard
    result = h.send(LocationInput(1.0, 2.0))
    assert result.messages[0].remove_keyboard
    assert h.text().startswith("📍 Thanks, got the location.\n<b>Check</b>")
    assert "<b>Place</b>: 📍 pin (1.00000, 2.00000)" in h.text()

    h.tap("✅ Send")
    assert h.status is Status.FINISHED
    assert h.calls[-1].params == {"reference": "<Ann & co>"}
    assert h.text() == "Thanks &lt;Ann &amp; co&gt;!"


def test_confirm_wants_a_button() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    h.tap("✅ Done")
    h.send("Skip ➡️")
    h.tap("Skip ➡️")
    h.send("yes")
    assert h.text().startswith("Please tap “✅ Send”, or ✏️ to change an answer.")


def test_state_round_trips_through_json_at_every_step() -> None:
    engine = Engine()
    flow = make_flow(SURVEY)
    ctx = context()
    result = engine.start(flow, ctx)
    inputs = [
        TextInput("Ann"),
        ButtonInput("d:2:o1"),
        ButtonInput("d:2:ok"),
        LocationInput(50.0, 4.0),
    ]
    for item in inputs:
        stored = json.loads(json.dumps(result.state.to_json()))
        restored = SessionState.from_json(stored)
        assert restored == result.state
        if result.status is Status.CALLING:
            result = engine.resume(flow, restored, {"count": 1}, ctx)
        result = engine.handle(flow, restored, item, ctx)
    if result.status is Status.CALLING:
        stored = json.loads(json.dumps(result.state.to_json()))
        assert SessionState.from_json(stored) == result.state
        assert SessionState.from_json(stored).pending is not None


def test_accepted_and_changed_tell_the_host_what_to_save() -> None:
    h = survey()
    h.start()
    bad = h.send("")
    assert not bad.accepted
    assert bad.changed  # the failure counter must be saved too
    good = h.send("Ann")
    assert good.accepted
    assert good.changed


def test_reprompt_after_a_restart_or_as_a_nudge() -> None:
    h = survey()
    h.start()
    h.send("Ann")
    again = h.engine.reprompt(h.flow, h.state, h.ctx)
    assert again.messages[0].text.startswith("Favourite colours?")
    assert not again.changed
    nudge = h.engine.reprompt(h.flow, h.state, h.ctx, nudge=True)
    assert nudge.messages[0].text.startswith("Still there? Here is where we stopped:\n\nFavourite")


def test_a_pending_call_is_asked_again_until_resumed() -> None:
    engine = Engine()
    flow = make_flow(SURVEY)
    ctx = context()
    result = engine.start(flow, ctx)
    for item in [TextInput("Ann"), ButtonInput("d:2:ok"), LocationInput(1.0, 1.0)]:
        result = engine.handle(flow, result.state, item, ctx)
    assert result.status is Status.CALLING
    assert engine.reprompt(flow, result.state, ctx).call == result.call
    ignored = engine.handle(flow, result.state, TextInput("hello"), ctx)
    assert ignored.call == result.call
    assert not ignored.accepted
    cancelled = engine.handle(flow, result.state, CommandInput("cancel"), ctx)
    assert cancelled.status is Status.CANCELLED
    not_pending = engine.resume(flow, cancelled.state, {"count": 0}, ctx)
    assert not_pending.messages == []
    assert not not_pending.changed


def test_a_conversation_on_another_flow_version_ends_politely() -> None:
    h = survey()
    h.start()
    newer = make_flow(SURVEY, header="id: demo\nversion: 2\ntitle: {en: Demo}\n")
    result = h.engine.handle(newer, h.state, TextInput("Ann"), h.ctx)
    assert result.status is Status.CANCELLED
    assert (
        result.messages[0].text == "This conversation is no longer available. Please start again."
    )


def test_the_language_falls_back_to_the_flows_first() -> None:
    h = Host(make_flow(SURVEY), language="de")
    h.start()
    assert h.text() == "Your name?"
    assert h.buttons() == [("✖️ Cancel", "d:1:cx")]


def test_editing_a_choice_with_fetched_options_fetches_them_again() -> None:
    flow = make_flow(
        """\
  - id: category
    kind: choice
    name: category
    prompt: {en: "Category?"}
    options_from: {query: categories}
  - id: check
    kind: confirm
    prompt: {en: "Check"}
    summary:
      - {answer: category, label: {en: Category}}
  - id: bye
    kind: end
    text: {en: "Sent: {answers.category}"}
"""
    )
    h = Host(flow)
    h.start()
    h.tap("Roads")
    assert h.text() == "Check\n\n<b>Category</b>: Roads"
    h.tap("✏️ Category")
    assert [call.name for call in h.calls] == ["categories", "categories"]
    h.tap("Litter")
    assert h.text() == "Check\n\n<b>Category</b>: Litter"
    h.tap("✅ Send")
    assert h.text() == "Sent: Litter"


def test_a_summary_follows_the_citizens_language_typography() -> None:
    flow = make_flow(
        """\
  - id: what
    kind: text
    name: what
    prompt: {en: "What?", fr: "Quoi ?"}
  - id: check
    kind: confirm
    prompt: {en: "Check", fr: "Vérifiez"}
    summary:
      - {answer: what, label: {en: Description, fr: Description}}
  - id: bye
    kind: end
    text: {en: "Bye", fr: "Au revoir"}
""",
        languages=("en", "fr"),
    )
    for language, line in [
        ("en", "<b>Description</b>: a &lt;b&gt; lamp"),
        ("fr", "<b>Description</b> : a &lt;b&gt; lamp"),
    ]:
        h = Host(flow, language=language)
        h.start()
        h.send("a <b> lamp")
        assert h.text().endswith("\n\n" + line)


def test_skipping_after_some_photos_keeps_them() -> None:
    flow = make_flow(
        """\
  - id: pics
    kind: photo
    name: pics
    optional: true
    prompt: {en: "Photos?"}
  - id: bye
    kind: end
    text: {en: "Got {answers.pics}"}
"""
    )
    h = Host(flow)
    h.start()
    h.send(PhotoInput("a", "ua"))
    h.send(CommandInput("skip"))
    assert h.text().endswith("Got 1 photo")


def test_regional_language_codes_use_the_base_language() -> None:
    flow = make_flow(
        """\
  - id: bye
    kind: end
    text: {en: "Bye", fr: "Au revoir"}
""",
        languages=("en", "fr"),
    )
    assert flow.language("fr-BE") == "fr"
    assert flow.language("FR") == "fr"
    assert flow.language("nl") == "en"
