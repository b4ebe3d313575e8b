"""The condition language: parsing, evaluation and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from dialogs.conditions import ConditionSyntaxError, Name, evaluate, names, parse

VALUES: dict[tuple[str, ...], Any] = {
    ("answers", "count"): 3,
    ("answers", "skills"): ["gardening", "driving"],
    ("answers", "anonymous"): True,
    ("answers", "name"): "Ann",
    ("results", "nearby", "count"): 0,
    ("profile", "first_name"): "Ann",
}


def run(source: str) -> Any:
    return evaluate(parse(source), lambda path: VALUES.get(path))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("answers.count > 2", True),
        ("answers.count >= 3 and answers.count <= 3", True),
        ("answers.count == 3.0", True),
        ("answers.count != 3", False),
        ("answers.count < -1", False),
        ("'driving' in answers.skills", True),
        ("'cooking' not in answers.skills", True),
        ("'nn' in answers.name", True),
        ("answers.anonymous", True),
        ("not answers.anonymous", False),
        ("answers.anonymous == 1", False),
        ("answers.missing == null", True),
        ("answers.missing > 0", False),
        ("answers.missing < 0", False),
        ("empty(answers.missing)", True),
        ("empty(answers.skills)", False),
        ("empty('')", True),
        ("empty([])", True),
        ("count(answers.skills)", 2),
        ("count(answers.missing)", 0),
        ("count(answers.count)", 1),
        ("results.nearby.count > 0 or profile.first_name == 'Ann'", True),
        ("(answers.count > 5 or answers.count < 4) and not false", True),
        ("answers.missing or answers.skills", ["gardening", "driving"]),
        ("answers.name in ['Ann', 'Bob']", True),
        ('"a\\"b" == \'a"b\'', True),
        ("answers.name > 'Al'", True),
        ("answers.name > 1", False),
        ("not not true", True),
    ],
)
def test_evaluates(source: str, expected: Any) -> None:
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "expression is empty"),
        ("answers.x =", "unexpected '=' at column 11 (use == to compare)"),
        ("answers.x ==", "expected a value at column 13, found the end"),
        ("(answers.x", "expected ')' at column 11, found the end"),
        ("answers.x answers.y", "expected an operator or the end at column 11, found 'answers.y'"),
        ("len(answers.x)", "unknown function 'len' at column 1 (known: empty, count)"),
        ("__import__('os')", "unknown function '__import__' at column 1"),
        ("answers.x ; drop", "unexpected ';' at column 11"),
        ("1 < 2 < 3", "expected an operator or the end at column 7, found '<'"),
        ("'open", "unexpected ''' at column 1"),
    ],
)
def test_syntax_errors_say_where(source: str, message: str) -> None:
    with pytest.raises(ConditionSyntaxError) as caught:
        parse(source)
    assert str(caught.value).startswith(message)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(ConditionSyntaxError, match="nested too deeply"):
        parse("(" * 200 + "true" + ")" * 200)
    with pytest.raises(ConditionSyntaxError, match="nested too deeply"):
        parse("not " * 200 + "true")


def test_long_sources_are_refused() -> None:
    with pytest.raises(ConditionSyntaxError, match="longer than"):
        parse("true or " * 200 + "true")


def test_names_lists_every_name_read() -> None:
    expr = parse("count(answers.a) > 0 and results.b.c in [profile.d, 1] or not answers.e")
    assert [name.dotted for name in names(expr)] == [
        "answers.a",
        "results.b.c",
        "profile.d",
        "answers.e",
    ]
    assert Name(("answers", "a")).dotted == "answers.a"
