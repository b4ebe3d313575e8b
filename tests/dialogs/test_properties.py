"""Property tests: random citizens and random hosts never break the engine or Telegram's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dialogs as dialogs_package
from dialogs import (
    ButtonInput,
    Call,
    CommandInput,
    Engine,
    FlowError,
    Input,
    LocationInput,
    OutMessage,
    PhotoInput,
    Problem,
    Result,
    SessionState,
    Status,
    TextInput,
    UnsupportedInput,
    builtin_registry,
    check_html,
    load_builtin_flows,
    load_flow,
)
from dialogs.state import MAX_CALLBACK_BYTES, MAX_MESSAGE_LENGTH
from tests.dialogs.support import DEFAULT_ANSWERS, context

FLOWS = load_builtin_flows(registry=builtin_registry())
ENGINE = Engine()

texts = (
    st.text(max_size=60)
    | st.text(min_size=3000, max_size=5000)
    | st.sampled_from(
        ["", " ", "<b>", "&", "3,5", "7", "0", "10", "yes", "non", "today", "31/12/2025", "✅ Done"]
    )
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
options = st.lists(
    st.fixed_dictionaries(
        {"value": st.text(min_size=1, max_size=300) | st.integers(), "label": texts},
        optional={"details": texts | st.dictionaries(st.sampled_from(["en", "fr"]), texts)},
    ),
    max_size=30,
)


def host_answer(data: st.DataObject, call: Call) -> dict[str, Any]:
    """Sometimes the usual answer, sometimes something odd the engine must survive."""
    usual = DEFAULT_ANSWERS[call.name]
    choice = data.draw(st.integers(0, 9), label="answer kind")
    if choice <= 6:
        return dict(usual) if isinstance(usual, dict) else {}
    if choice == 7:
        return {"options": data.draw(options, label="options")}
    if choice == 8:
        return {
            "count": data.draw(st.integers(-1, 3)),
            "first": data.draw(
                st.dictionaries(st.sampled_from(["reference", "distance_m"]), json_values)
            ),
        }
    return data.draw(st.dictionaries(st.text(max_size=12), json_values, max_size=5), label="junk")


def inputs(data: st.DataObject, result: Result) -> Input:
    current = [
        button.data for message in result.messages for row in message.inline for button in row
    ]
    reply = [
        button.text
        for message in result.messages
        for row in message.reply_keyboard
        for button in row
    ]
    onward = [item for item in current if not item.endswith(":cx")]
    kind = data.draw(st.integers(-6, 9), label="input kind")
    if kind < 0 and onward:
        # Mostly the buttons that move on: a conversation should get somewhere.
        return ButtonInput(data.draw(st.sampled_from(onward), label="button"))
    if kind <= 2 and current:
        return ButtonInput(data.draw(st.sampled_from(current), label="any button"))
    if kind == 3:
        stale = st.builds(
            lambda seq, tap: f"d:{seq}:{tap}",
            st.integers(0, 10**10),
            st.sampled_from(
                [
                    "o0",
                    "o99",
                    "ok",
                    "sk",
                    "bk",
                    "pn",
                    "pp",
                    "y",
                    "n",
                    "r3",
                    "r-1",
                    "t0",
                    "t9",
                    "e0",
                    "e9",
                    "sb",
                    "ct",
                    "zz",
                ]
            ),
        )
        return ButtonInput(data.draw(stale | st.text(max_size=100), label="stale"))
    if kind == 4 and reply:
        return TextInput(data.draw(st.sampled_from(reply), label="reply button"))
    if kind == 5:
        return LocationInput(data.draw(st.floats()), data.draw(st.floats()))
    if kind == 6:
        file_id = data.draw(st.text(max_size=20), label="file id")
        return PhotoInput(file_id, data.draw(st.text(max_size=5), label="unique id"))
    if kind == 7:
        return UnsupportedInput(data.draw(st.sampled_from(["sticker", "voice", "document"])))
    if kind == 8:
        return CommandInput(data.draw(st.sampled_from(["cancel", "back", "skip", "start", ""])))
    return TextInput(data.draw(texts, label="text"))


def sensible(data: st.DataObject, flow_id: str, result: Result) -> Input:
    """What a cooperative citizen would send at this step."""
    step = FLOWS[flow_id].step(result.state.step)
    kind = getattr(step, "kind", "")
    if kind == "text":
        return TextInput(data.draw(st.sampled_from(["A broken streetlight", "x" * 1500])))
    if kind == "number":
        return TextInput("5")
    done = [
        d for m in result.messages for row in m.inline for b in row if (d := b.data).endswith("ok")
    ]
    if kind == "choice" and done and result.state.draft and data.draw(st.booleans()):
        return ButtonInput(done[0])
    if kind == "location":
        pin = LocationInput(50.85, 4.35)
        return data.draw(st.sampled_from([pin, TextInput("Grand-Place 1, Brussels")]))
    if kind == "photo":
        photo = PhotoInput(data.draw(st.sampled_from(["a", "b", "c", "d"])), "u")
        done = [b.text for m in result.messages for row in m.reply_keyboard for b in row][:1]
        return data.draw(st.sampled_from([photo, photo, *[TextInput(t) for t in done]]))
    return inputs(data, result)


def check_message(message: OutMessage) -> None:
    assert 1 <= len(message.text) <= MAX_MESSAGE_LENGTH
    assert message.text.strip()
    assert check_html(message.text) is None, message.text
    markups = [bool(message.inline), bool(message.reply_keyboard), message.remove_keyboard]
    assert sum(markups) <= 1
    for row in message.inline:
        for button in row:
            assert button.text.strip()
            assert button.data.startswith("d:")
            assert len(button.data.encode()) <= MAX_CALLBACK_BYTES
    for row in message.reply_keyboard:
        for reply_button in row:
            assert reply_button.text.strip()


def check_result(result: Result) -> None:
    assert result.status in set(Status)
    assert result.status is result.state.status
    assert (result.call is not None) == (result.status is Status.CALLING)
    for message in result.messages:
        check_message(message)
    stored = json.loads(json.dumps(result.state.to_json()))
    assert SessionState.from_json(stored) == result.state


def settle(data: st.DataObject, flow_id: str, result: Result, ctx: Any) -> Result:
    flow = FLOWS[flow_id]
    for _ in range(20):
        if result.status is not Status.CALLING:
            return result
        assert result.call is not None
        answer = host_answer(data, result.call)
        result = ENGINE.resume(flow, result.state, answer, ctx)
        check_result(result)
    raise AssertionError("the flow kept calling")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    flow_id=st.sampled_from(sorted(FLOWS)),
    language=st.sampled_from(["en", "fr", "de"]),
)
def test_random_conversations_never_break(data: st.DataObject, flow_id: str, language: str) -> None:
    flow = FLOWS[flow_id]
    ctx = context(language)
    prefill = data.draw(
        st.dictionaries(st.sampled_from(["service", "report", "x"]), json_values, max_size=2)
    )
    result = ENGINE.start(flow, ctx, prefill=prefill)
    check_result(result)
    result = settle(data, flow_id, result, ctx)
    for _ in range(data.draw(st.integers(10, 60), label="length")):
        if result.status in {Status.FINISHED, Status.CANCELLED}:
            break
        assert result.status is Status.WAITING
        before = result.state
        if data.draw(st.integers(0, 20), label="nudge") == 0:
            result = ENGINE.reprompt(flow, before, ctx, nudge=True)
            check_result(result)
            assert result.messages
            continue
        cooperative = data.draw(st.integers(0, 3), label="cooperative") > 0
        item = sensible(data, flow_id, result) if cooperative else inputs(data, result)
        result = ENGINE.handle(flow, before, item, ctx)
        check_result(result)
        assert result.messages or result.status is Status.CALLING
        result = settle(data, flow_id, result, ctx)
        assert result.status is not Status.CALLING
    event(f"{flow_id} ended {result.status.value} at {result.state.step}")


SHIPPED = {
    name: (Path(dialogs_package.__file__).parent / "flows" / name).read_text(encoding="utf-8")
    for name in ("report.yaml", "volunteer.yaml", "rate.yaml")
}


def check_load(text: str) -> None:
    """Loading either succeeds or lists problems that point inside the file."""
    lines = text.count("\n") + 2
    problems: list[Problem] | None = None
    try:
        load_flow(text, filename="x.yaml", registry=builtin_registry())
    except FlowError as error:
        problems = error.problems
    if problems is None:
        return
    assert problems
    for problem in problems:
        assert problem.file == "x.yaml"
        assert 1 <= problem.line <= lines, problem
        assert problem.message


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(sorted(SHIPPED)),
    cuts=st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 40)), max_size=3),
    insert=st.text(alphabet=" \n:-{}[]'\"#&*!|>abc01", max_size=12),
)
def test_mangled_flow_files_give_problems_not_crashes(
    name: str, cuts: list[tuple[int, int]], insert: str
) -> None:
    text = SHIPPED[name]
    for start, length in cuts:
        start %= len(text)
        text = text[:start] + insert + text[start + length :]
    check_load(text)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_random_text_gives_problems_not_crashes(text: str) -> None:
    check_load(text)


def test_deeply_nested_documents_are_refused() -> None:
    with pytest.raises(FlowError) as caught:
        load_flow("[" * 5000 + "]" * 5000, filename="x.yaml", registry=builtin_registry())
    assert str(caught.value) == "x.yaml:1: the document is nested too deeply"
