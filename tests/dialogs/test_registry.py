"""The call registry and system-text overrides."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from dialogs import CallKind, CallRegistry, builtin_registry
from dialogs.registry import NoParams
from tests.dialogs.support import Host, make_flow


def test_builtin_declarations() -> None:
    registry = builtin_registry()
    assert registry.names() == [
        "add_report_details",
        "categories",
        "create_report",
        "follow_report",
        "nearby_open_reports",
        "opportunities",
        "record_attendance",
        "record_fix_answer",
        "record_rating",
        "report_summary",
        "save_volunteer_profile",
        "services",
        "shift_summary",
        "volunteer_profile",
        "volunteer_signup",
    ]
    queries = {spec.name for spec in registry if spec.kind is CallKind.QUERY}
    assert queries == {
        "categories",
        "services",
        "nearby_open_reports",
        "volunteer_profile",
        "opportunities",
        "report_summary",
        "shift_summary",
    }
    options = {spec.name for spec in registry if spec.returns_options}
    assert options == {"categories", "services", "opportunities"}
    nearby = registry.get("nearby_open_reports")
    assert nearby is not None
    assert list(nearby.params.model_fields) == ["category", "latitude", "longitude"]
    assert "first.reference" in nearby.results
    rating = registry.get("record_rating")
    assert rating is not None
    with pytest.raises(ValueError, match="less than or equal to 10"):
        rating.params.model_validate({"service": "x", "overall": 3, "nps": 11})


def test_each_application_builds_its_own_registry() -> None:
    assert builtin_registry() is not builtin_registry()
    assert "categories" in builtin_registry()
    assert builtin_registry().get("nope") is None


def test_declaring_twice_is_an_error() -> None:
    registry = CallRegistry()
    registry.declare("ping", kind=CallKind.QUERY, params=NoParams)
    with pytest.raises(ValueError, match="declared twice"):
        registry.declare("ping", kind=CallKind.QUERY, params=NoParams)


def test_the_host_checks_its_implementations_at_start_up() -> None:
    registry = CallRegistry()

    class Ping(BaseModel):
        target: str

    registry.declare("ping", kind=CallKind.ACTION, params=Ping, results={"ok": "bool"})
    registry.declare("pong", kind=CallKind.QUERY, params=NoParams)
    assert registry.check_implementations({"ping": print, "peng": print}) == [
        "no implementation for call 'pong'",
        "implementation 'peng' matches no declared call",
    ]
    assert registry.check_implementations({"ping": print, "pong": print}) == []


def test_a_flow_can_use_its_own_registry() -> None:
    registry = CallRegistry()

    class Lookup(BaseModel):
        code: str

    registry.declare("lookup", kind=CallKind.QUERY, params=Lookup, results={"name": "str"})
    flow = make_flow(
        """\
  - id: code
    kind: text
    name: code
    prompt: {en: "Code?"}
  - id: find
    kind: call
    call: lookup
    params: {code: answers.code}
    result: found
  - id: end
    kind: end
    text: {en: "That is {results.found.name}."}
""",
        registry=registry,
    )
    h = Host(flow, answers={"lookup": {"name": "<Anna>"}})
    h.start()
    h.send("A1")
    assert h.calls[0].params == {"code": "A1"}
    assert h.text() == "That is &lt;Anna&gt;."


def test_flows_override_system_texts() -> None:
    flow = make_flow(
        """\
  - id: x
    kind: text
    name: x
    optional: true
    prompt: {en: "Anything else?"}
  - id: end
    kind: end
    text: {en: "Bye"}
""",
        header=(
            "id: demo\nversion: 1\ntitle: {en: Demo}\n"
            "texts:\n  skip: {en: 'No, nothing'}\n  cancelled: {en: '<b>Stopped.</b>'}\n"
        ),
    )
    h = Host(flow)
    h.start()
    assert [text for text, _ in h.buttons()] == ["No, nothing", "✖️ Cancel"]
    h.tap("✖️ Cancel")
    assert h.text() == "<b>Stopped.</b>"
