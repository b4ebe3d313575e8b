"""Loading flows: every class of problem is reported as ``file:line: message``."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from dialogs import FlowError, Problem, builtin_registry, load_flow, load_flow_file
from dialogs.models import ChoiceStep, Flow
from tests.dialogs.support import make_flow

HEADER = "id: demo\nversion: 1\ntitle: {en: Demo, fr: Démo}\nsteps:\n"


def problems(text: str, languages: tuple[str, ...] = ("en",)) -> list[str]:
    """The rendered problems of a document (which must fail to load)."""
    with pytest.raises(FlowError) as caught:
        load_flow(dedent(text), filename="f.yaml", languages=languages, registry=builtin_registry())
    assert str(caught.value) == "\n".join(str(p) for p in caught.value.problems)
    return [str(problem) for problem in caught.value.problems]


def test_a_minimal_flow_loads() -> None:
    flow = make_flow(
        """\
  - id: hello
    kind: end
    text: {en: Hello}
"""
    )
    assert isinstance(flow, Flow)
    assert flow.id == "demo"
    assert flow.version == 1
    assert flow.title("en") == "Demo"
    assert flow.expires_after.days == 3


def test_problem_renders_as_file_line_message() -> None:
    assert str(Problem("a.yaml", 7, "oops")) == "a.yaml:7: oops"


def test_yaml_syntax_error_has_its_line() -> None:
    text = HEADER + "  - id: a\n    kind: end\n    text: {en: [unclosed}\n"
    assert problems(text) == ["f.yaml:7: YAML syntax error: expected ',' or ']', but got '}'"]


def test_empty_and_non_mapping_documents() -> None:
    assert problems("") == ["f.yaml:1: the file is empty"]
    assert problems("- a\n- b\n") == [
        "f.yaml:1: a flow must be a mapping with id, version, title and steps"
    ]


def test_unknown_keys_are_reported_at_the_line_of_the_key() -> None:
    text = """\
        id: demo
        version: 1
        colour: blue
        title: {en: Demo}
        steps:
          - id: a
            kind: text
            name: a
            prompt: {en: Hi}
            maxlen: 4
          - id: b
            kind: end
            text: {en: Bye}
            next_step: a
    """
    assert problems(text) == [
        "f.yaml:3: unknown key 'colour'",
        "f.yaml:10: step 'a': unknown key 'maxlen'",
        "f.yaml:14: step 'b': unknown key 'next_step'",
    ]


def test_wrong_types_and_missing_keys() -> None:
    text = """\
        id: demo
        version: one
        title: Demo
        steps:
          - id: a
            kind: text
            name: a
            prompt: {en: Hi}
            max_length: lots
          - id: b
            kind: choice
            prompt: {en: Pick}
            options:
              - value: no
                label: {en: No}
          - kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:2: version: Input should be a valid integer, unable to parse string as an integer",
        "f.yaml:3: title: must be a mapping of language to text, such as {en: ..., fr: ...}",
        "f.yaml:9: step 'a': max_length: Input should be a valid integer,"
        " unable to parse string as an integer",
        "f.yaml:10: step 'b': missing key 'name'",
        "f.yaml:14: step 'b': options[0].value: Input should be a valid string"
        " (YAML reads yes/no/on/off as true/false: put it in quotes)",
        "f.yaml:15: step 'b': options[0].label.en: Input should be a valid string"
        " (YAML reads yes/no/on/off as true/false: put it in quotes)",
        "f.yaml:16: steps[2]: missing key 'id'",
    ]


def test_unknown_step_kind_and_missing_kind() -> None:
    text = HEADER + "  - id: a\n    kind: poll\n  - id: b\n    text: {en: x}\n"
    assert problems(text) == [
        "f.yaml:6: step 'a': unknown step kind 'poll' (expected one of: message, choice, text,"
        " number, rating, yesno, location, photo, date, datetime, confirm, call, end)",
        "f.yaml:7: step 'b': missing key 'kind'",
    ]


def test_duplicate_keys_and_duplicate_step_ids() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: message
            text: {en: Hi}
            text: {en: Hello}
          - id: a
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:8: duplicate key 'text' (first at line 7)",
        "f.yaml:9: step 'a': the id 'a' is used twice (first at line 5)",
    ]


def test_unknown_step_references() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: choice
            name: a
            prompt: {en: Pick}
            options_from: {query: categories, if_empty: nowhere}
            next:
              - if: answers.a == 'x'
                goto: elsewhere
              - goto: b
          - id: b
            kind: message
            text: {en: Hi}
            next: nothing
          - id: c
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:9: step 'a': options_from.if_empty: unknown step 'nowhere'",
        "f.yaml:12: step 'a': next[0].goto: unknown step 'elsewhere'",
        "f.yaml:17: step 'b': next: unknown step 'nothing'",
        # Step c is unreachable only because of these: that is not repeated.
    ]


def test_unreachable_steps() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: message
            text: {en: Hi}
            next: c
          - id: b
            kind: message
            text: {en: Never shown}
          - id: c
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == ["f.yaml:9: step 'b': can never be reached"]


def test_loops_without_a_question_are_refused() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: text
            name: a
            prompt: {en: Hi}
          - id: b
            kind: message
            text: {en: Again}
          - id: c
            kind: text
            name: c
            skip_if: answers.a == 'x'
            prompt: {en: Hi}
            next:
              - if: answers.c == 'stop'
                goto: d
              - goto: b
          - id: d
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:9: step 'b': steps b, c can loop forever without waiting for an answer"
    ]


def test_a_loop_through_a_question_is_fine() -> None:
    flow = make_flow(
        """\
  - id: a
    kind: yesno
    name: again
    prompt: {en: "Again?"}
    next:
      - if: answers.again
        goto: a
      - goto: b
  - id: b
    kind: end
    text: {en: Bye}
"""
    )
    assert flow.step("a") is not None


def test_the_last_step_must_end() -> None:
    text = HEADER + "  - id: a\n    kind: message\n    text: {en: Hi}\n"
    assert problems(text) == [
        "f.yaml:5: step 'a': is the last step: give it 'next' (with a default) or make it an end"
    ]


def test_missing_translations_for_every_enabled_language() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        triggers:
          menu: true
          menu_label: {en: Demo, fr: ""}
        steps:
          - id: a
            kind: choice
            name: a
            prompt: {en: Pick, fr: Choisissez}
            options:
              - value: x
                label: {en: X}
          - id: b
            kind: end
            text: {fr: Au revoir}
    """
    assert problems(text, ("en", "fr")) == [
        "f.yaml:3: title: missing translation for fr",
        "f.yaml:6: triggers.menu_label: missing translation for fr",
        "f.yaml:14: step 'a': options[0].label: missing translation for fr",
        "f.yaml:17: step 'b': text: missing translation for en",
    ]


def test_system_text_overrides_are_checked() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        texts:
          cancel: {en: "Stop <b>now"}
          canсel: {en: Stop}
        steps:
          - id: a
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:5: texts.cancel.en: bad HTML: tag <b> is never closed",
        "f.yaml:6: texts: unknown system text 'canсel'",
    ]


def test_a_language_the_engine_lacks_must_be_given_under_texts() -> None:
    text = HEADER.replace("{en: Demo, fr: Démo}", "{de: Demo}") + (
        "  - id: a\n    kind: end\n    text: {de: Tschüss}\n"
    )
    found = problems(text, ("de",))
    assert len(found) == 1
    assert found[0].startswith("f.yaml:1: texts: the engine has no 'de' text for back, cancel,")
    assert found[0].endswith(", error_cannot_go_back: add them under texts:")


def test_bad_html_and_placeholders_in_texts() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: text
            name: a
            prompt: {en: "Fish & chips"}
          - id: b
            kind: end
            text: {en: "Thanks {answers.a} {answers.b} {profile.age} {results.x.y} {oops"}
    """
    assert problems(text) == [
        "f.yaml:8: step 'a': prompt.en: bad HTML: '&' at character 6 is not an entity; write &amp;",
        "f.yaml:11: step 'b': text.en: unmatched '{' (write {{ for a brace)",
    ]
    text = text.replace(" {oops", "")
    assert problems(text) == [
        "f.yaml:8: step 'a': prompt.en: bad HTML: '&' at character 6 is not an entity; write &amp;",
        "f.yaml:11: step 'b': text.en: 'answers.b' is not set by any step before this one",
        "f.yaml:11: step 'b': text.en: unknown profile field 'profile.age'"
        " (known: first_name, last_name, username, language)",
        "f.yaml:11: step 'b': text.en: 'results.x' is not set by any call before this one",
    ]


def test_bad_calls_and_parameters() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: pick
            kind: choice
            name: category
            prompt: {en: Pick}
            options_from: {query: create_report}
          - id: nearby
            kind: call
            call: nearby_open_reports
            params:
              category: answers.category
              latitude: answers.place.latitude
              radius: 200
            result: nearby
          - id: place
            kind: location
            name: place
            prompt: {en: "Where?"}
          - id: make
            kind: call
            call: create_reprot
          - id: follow
            kind: call
            call: follow_report
            params:
              reference: results.nearby.first.ref
          - id: rate
            kind: call
            call: record_rating
            params:
              service: "'library'"
              overall: 9
          - id: end
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:9: step 'pick': options_from.query: 'create_report' is not a query that"
        " returns options",
        "f.yaml:13: step 'nearby': params: call 'nearby_open_reports' needs parameter longitude",
        "f.yaml:15: step 'nearby': params.latitude: 'answers.place' is not set by any step"
        " before this one",
        "f.yaml:16: step 'nearby': params: call 'nearby_open_reports' has no parameter"
        " 'radius' (it takes: category, latitude, longitude)",
        "f.yaml:24: step 'make': call: unknown call 'create_reprot' (known:"
        " add_report_details, categories, create_report, follow_report, nearby_open_reports,"
        " opportunities, record_attendance, record_fix_answer, record_rating, report_summary,"
        " save_volunteer_profile, services, shift_summary, volunteer_profile, volunteer_signup)",
        "f.yaml:29: step 'follow': params.reference: call 'nearby_open_reports' returns no"
        " field 'first.ref' (it returns: count, first.reference, first.category, first.distance_m,"
        " first.supporters)",
        "f.yaml:35: step 'rate': params.overall: parameter 'overall': Input should be less than"
        " or equal to 5",
    ]


def test_condition_syntax_errors() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: number
            name: age
            prompt: {en: "Age?"}
            skip_if: profile.first_name = 'Ann'
            next:
              - if: answers.age >
                goto: b
              - goto: b
          - id: b
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:9: step 'a': skip_if: bad condition 'profile.first_name = 'Ann'': unexpected"
        " '=' at column 20 (use == to compare)",
        "f.yaml:11: step 'a': next[0].if: bad condition 'answers.age >': expected a value at"
        " column 14, found the end",
    ]


def test_condition_names_are_checked() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: number
            name: age
            prompt: {en: "Age?"}
            skip_if: answers.age > 3
            next:
              - if: age > 3
                goto: b
              - if: answers.age.years > 3 or profile.first_name == 'x'
                goto: b
              - if: results.x.y and answers.age > 3
                goto: b
              - goto: b
          - id: b
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:9: step 'a': skip_if: 'answers.age' is not set by any step before this one",
        "f.yaml:11: step 'a': next[0].if: unknown name 'age': names start with answers.,"
        " results. or profile.",
        "f.yaml:13: step 'a': next[1].if: 'answers.age.years': answers.age has no field 'years'",
        "f.yaml:15: step 'a': next[2].if: 'results.x' is not set by any call before this one",
    ]


def test_options_and_bounds_are_consistent() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        steps:
          - id: a
            kind: choice
            name: a
            prompt: {en: Pick}
          - id: b
            kind: choice
            name: b
            min: 2
            prompt: {en: Pick}
            options:
              - {value: x, label: {en: X}}
              - {value: x, label: {en: Y}}
          - id: c
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:5: step 'a': give either 'options' or 'options_from'",
        "f.yaml:9: step 'b': options: duplicate value 'x'",
    ]


def test_every_problem_is_reported_at_once() -> None:
    text = """\
        id: demo
        version: 1
        title: {en: Demo}
        colour: red
        steps:
          - id: a
            kind: text
            name: a
            prompt: {en: "Hi {answers.zz}"}
            maxlen: 3
            next: c
          - id: b
            kind: end
            text: {en: Bye}
    """
    assert problems(text) == [
        "f.yaml:4: unknown key 'colour'",
        "f.yaml:9: step 'a': prompt.en: 'answers.zz' is not set by any step before this one",
        "f.yaml:10: step 'a': unknown key 'maxlen'",
        "f.yaml:11: step 'a': next: unknown step 'c'",
    ]


def test_prefilled_answers_count_as_set() -> None:
    flow = make_flow(
        """\
  - id: a
    kind: end
    text: {en: "Thanks for rating {answers.service}"}
""",
        header="id: demo\nversion: 1\ntitle: {en: Demo}\nprefill: [service]\n",
    )
    assert flow.definition.prefill == ("service",)


def test_answers_from_any_earlier_branch_count() -> None:
    flow = make_flow(
        """\
  - id: a
    kind: yesno
    name: pin
    prompt: {en: "Pin?"}
    next:
      - if: answers.pin
        goto: b
      - goto: c
  - id: b
    kind: location
    name: where
    prompt: {en: "Where?"}
    next: d
  - id: c
    kind: text
    name: where
    prompt: {en: "Where?"}
  - id: d
    kind: end
    text: {en: "Noted {answers.where} {answers.where.latitude}"}
"""
    )
    assert [step.id for step in flow.steps] == ["a", "b", "c", "d"]


def test_huge_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        text += f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous},"
        text += f" *{previous}, *{previous}, *{previous}, *{previous}]\n"
    found = problems(text)
    assert found[0].endswith("the document is too large (more than 20000 values)")


def test_load_flow_file_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(FlowError) as caught:
        load_flow_file(missing, registry=builtin_registry())
    assert str(caught.value).startswith(f"{missing}:1: cannot read the file:")
    good = tmp_path / "good.yaml"
    good.write_text(HEADER + "  - id: a\n    kind: end\n    text: {en: Bye, fr: Salut}\n")
    assert load_flow_file(good, registry=builtin_registry()).filename == str(good)


def test_flows_use_only_options_from_a_query() -> None:
    flow = make_flow(
        """\
  - id: a
    kind: choice
    name: a
    prompt: {en: Pick}
    options_from: {query: categories}
  - id: b
    kind: end
    text: {en: Bye}
"""
    )
    step = flow.step("a")
    assert isinstance(step, ChoiceStep)
    assert step.options_from is not None


def test_a_document_that_is_only_null_is_a_problem_not_a_silent_failure() -> None:
    """Regression: "~" composed to None with no problem listed (found by hypothesis)."""
    for text in ("~", "null", "--- ~\n"):
        with pytest.raises(FlowError) as caught:
            load_flow(text, filename="x.yaml", registry=builtin_registry())
        assert [str(p) for p in caught.value.problems] == [
            "x.yaml:1: a flow must be a mapping with id, version, title and steps"
        ]
