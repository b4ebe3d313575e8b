"""A small, safe expression language for branch conditions and call parameters.

It is parsed here by hand (never ``eval``, never Python's ``ast``) and can only read
names from three namespaces: ``answers.*``, ``results.*`` and ``profile.*``.

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") operand)?
    operand    := NUMBER | STRING | true | false | null | NAME | FUNC "(" expr ")"
                | "(" expr ")" | "[" (expr ("," expr)*)? "]"

``and`` / ``or`` return one of their operands, as in Python, so ``answers.a or
results.b.c`` picks the first value that is set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

NAMESPACES = ("answers", "results", "profile")
FUNCTIONS = ("empty", "count")
MAX_SOURCE_LENGTH = 1000
_MAX_DEPTH = 40


class ConditionSyntaxError(ValueError):
    """The text is not a valid expression; the message says where."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: number, string, boolean or null."""

    value: Any


@dataclass(frozen=True, slots=True)
class Name:
    """A dotted name such as ``answers.location.latitude``."""

    path: tuple[str, ...]

    @property
    def dotted(self) -> str:
        """The name as written."""
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class ListExpr:
    """A list literal whose items are expressions."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Function:
    """``empty(x)`` or ``count(x)``."""

    name: str
    argument: Expr


@dataclass(frozen=True, slots=True)
class Not:
    """Logical negation."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``and`` / ``or``."""

    operator: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison or a membership test."""

    operator: str
    left: Expr
    right: Expr


Expr = Literal | Name | ListExpr | Function | Not | BoolOp | Compare

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            char = source[position]
            hint = " (use == to compare)" if char == "=" else ""
            raise ConditionSyntaxError(f"unexpected '{char}' at column {position + 1}{hint}")
        kind = match.lastgroup or ""
        if kind != "space":
            text = match.group()
            if kind == "name" and text in _KEYWORDS:
                kind = text
            tokens.append(_Token(kind, text, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(source) + 1))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.index = 0
        self.depth = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def expect(self, kind: str) -> _Token:
        if self.current.kind != kind:
            raise self.error(f"expected '{kind}'")
        return self.take()

    def error(self, expected: str) -> ConditionSyntaxError:
        token = self.current
        found = "the end" if token.kind == "end" else f"'{token.text}'"
        return ConditionSyntaxError(f"{expected} at column {token.column}, found {found}")

    def parse(self) -> Expr:
        expr = self.parse_or()
        if self.current.kind != "end":
            raise self.error("expected an operator or the end")
        return expr

    def parse_or(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ConditionSyntaxError("expression is nested too deeply")
        expr = self.parse_and()
        while self.current.kind == "or":
            self.take()
            expr = BoolOp("or", expr, self.parse_and())
        self.depth -= 1
        return expr

    def parse_and(self) -> Expr:
        expr = self.parse_not()
        while self.current.kind == "and":
            self.take()
            expr = BoolOp("and", expr, self.parse_not())
        return expr

    def parse_not(self) -> Expr:
        if self.current.kind == "not":
            self.take()
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise ConditionSyntaxError("expression is nested too deeply")
            operand = self.parse_not()
            self.depth -= 1
            return Not(operand)
        return self.parse_comparison()

    def parse_comparison(self) -> Expr:
        left = self.parse_operand()
        token = self.current
        if token.kind == "op" and token.text in {"==", "!=", "<", "<=", ">", ">="}:
            self.take()
            return Compare(token.text, left, self.parse_operand())
        if token.kind == "in":
            self.take()
            return Compare("in", left, self.parse_operand())
        if token.kind == "not" and self.tokens[self.index + 1].kind == "in":
            self.index += 2
            return Compare("not in", left, self.parse_operand())
        return left

    def parse_operand(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.take()
            number = float(token.text) if "." in token.text else int(token.text)
            return Literal(number)
        if token.kind == "string":
            self.take()
            return Literal(_unquote(token.text))
        if token.kind in _CONSTANTS:
            self.take()
            return Literal(_CONSTANTS[token.kind])
        if token.kind == "name":
            return self.parse_name()
        if token.kind == "op" and token.text == "(":
            self.take()
            expr = self.parse_or()
            self.expect_op(")")
            return expr
        if token.kind == "op" and token.text == "[":
            return self.parse_list()
        raise self.error("expected a value")

    def parse_name(self) -> Expr:
        token = self.take()
        if self.current.kind == "op" and self.current.text == "(":
            if token.text not in FUNCTIONS:
                raise ConditionSyntaxError(
                    f"unknown function '{token.text}' at column {token.column}"
                    f" (known: {', '.join(FUNCTIONS)})"
                )
            self.take()
            argument = self.parse_or()
            self.expect_op(")")
            return Function(token.text, argument)
        return Name(tuple(token.text.split(".")))

    def parse_list(self) -> Expr:
        self.take()
        items: list[Expr] = []
        if not (self.current.kind == "op" and self.current.text == "]"):
            items.append(self.parse_or())
            while self.current.kind == "op" and self.current.text == ",":
                self.take()
                items.append(self.parse_or())
        self.expect_op("]")
        return ListExpr(tuple(items))

    def expect_op(self, text: str) -> None:
        if not (self.current.kind == "op" and self.current.text == text):
            raise self.error(f"expected '{text}'")
        self.take()


def parse(source: str) -> Expr:
    """Parse an expression; raise ConditionSyntaxError saying what is wrong and where."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise ConditionSyntaxError(f"expression is longer than {MAX_SOURCE_LENGTH} characters")
    if not source.strip():
        raise ConditionSyntaxError("expression is empty")
    return _Parser(source).parse()


def names(expr: Expr) -> Iterator[Name]:
    """Every name the expression reads."""
    match expr:
        case Name():
            yield expr
        case ListExpr(items=items):
            for item in items:
                yield from names(item)
        case Function(argument=argument):
            yield from names(argument)
        case Not(operand=operand):
            yield from names(operand)
        case BoolOp(left=left, right=right) | Compare(left=left, right=right):
            yield from names(left)
            yield from names(right)
        case Literal():
            pass


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator in {"in", "not in"}:
        if isinstance(right, list) or (isinstance(right, str) and isinstance(left, str)):
            found = left in right
        else:
            found = False
        return found if operator == "in" else not found
    if operator in {"==", "!="}:
        # Keep true from equalling 1: answers of different kinds are never equal.
        same = (_is_number(left) and _is_number(right)) or type(left) is type(right)
        equal = same and left == right
        return equal if operator == "==" else not equal
    if not (
        (_is_number(left) and _is_number(right))
        or (isinstance(left, str) and isinstance(right, str))
    ):
        # Ordering a missing answer or mixed kinds is simply false, never an error.
        return False
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


def evaluate(expr: Expr, resolve: Callable[[tuple[str, ...]], Any]) -> Any:
    """Evaluate an expression; ``resolve`` maps a name's path to its value (None if unset)."""
    match expr:
        case Literal(value=value):
            return value
        case Name(path=path):
            return resolve(path)
        case ListExpr(items=items):
            return [evaluate(item, resolve) for item in items]
        case Function(name=name, argument=argument):
            value = evaluate(argument, resolve)
            if name == "empty":
                return value is None or (isinstance(value, str | list | dict) and not value)
            if isinstance(value, str | list | dict):
                return len(value)
            return 0 if value is None else 1
        case Not(operand=operand):
            return not evaluate(operand, resolve)
        case BoolOp(operator=operator, left=left, right=right):
            value = evaluate(left, resolve)
            if operator == "and":
                return evaluate(right, resolve) if value else value
            return value if value else evaluate(right, resolve)
        case Compare(operator=operator, left=left, right=right):
            return _compare(operator, evaluate(left, resolve), evaluate(right, resolve))
    raise AssertionError(expr)  # pragma: no cover - the match above is exhaustive


class Condition:
    """A parsed expression that keeps its source; usable as a pydantic field type."""

    __slots__ = ("expr", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.expr = parse(source)

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def evaluate(self, resolve: Callable[[tuple[str, ...]], Any]) -> Any:
        """Evaluate against the given name resolver."""
        return evaluate(self.expr, resolve)

    @classmethod
    def _validate(cls, value: Any) -> Condition:
        if isinstance(value, Condition):
            return value
        if isinstance(value, bool):
            return cls("true" if value else "false")
        if not isinstance(value, str):
            raise ValueError("must be a condition written as text")
        try:
            return cls(value)
        except ConditionSyntaxError as error:
            raise ValueError(f"bad condition '{value}': {error}") from None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate from text; serialise back to the text."""
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda c: c.source),
        )


class ParamValue:
    """A call parameter: an expression when written as text, else a literal YAML value."""

    __slots__ = ("expr", "source")

    def __init__(self, expr: Expr, source: Any) -> None:
        self.expr = expr
        self.source = source

    def __repr__(self) -> str:
        return f"ParamValue({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamValue) and other.source == self.source

    def __hash__(self) -> int:
        return hash(repr(self.source))

    @property
    def literal(self) -> bool:
        """True when the value was written as a YAML constant rather than an expression."""
        return isinstance(self.expr, Literal)

    @classmethod
    def _validate(cls, value: Any) -> ParamValue:
        if isinstance(value, ParamValue):
            return value
        if isinstance(value, str):
            try:
                return cls(parse(value), value)
            except ConditionSyntaxError as error:
                raise ValueError(f"bad expression '{value}': {error}") from None
        if value is None or isinstance(value, bool | int | float):
            return cls(Literal(value), value)
        if isinstance(value, list) and all(
            item is None or isinstance(item, bool | int | float | str) for item in value
        ):
            return cls(Literal(list(value)), value)
        raise ValueError("must be an expression (text), a number, true/false, null or a list")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """Validate from YAML values; serialise back to what was written."""
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda p: p.source),
        )
