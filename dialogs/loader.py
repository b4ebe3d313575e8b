"""Load flow documents: YAML -> validated models, reporting every problem with its line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from dialogs.conditions import NAMESPACES, Condition, Name, ParamValue, names
from dialogs.errors import FlowError, Problem
from dialogs.html import check_html
from dialogs.models import (
    STEP_KINDS,
    AnyStep,
    CallStep,
    ChoiceStep,
    ConfirmStep,
    EndStep,
    Flow,
    FlowDefinition,
    FlowHeader,
    LocalText,
    Question,
    Step,
    Text,
)
from dialogs.registry import CallKind, CallRegistry, CallSpec
from dialogs.templates import TemplateError, placeholders
from dialogs.texts import SystemText, SystemTexts, load_system_texts

PathKey = tuple[str | int, ...]
DEFAULT_LANGUAGES = ("en", "fr")
PROFILE_FIELDS = ("first_name", "last_name", "username", "language")
LOCATION_FIELDS = ("latitude", "longitude", "address")
MAX_NODES = 20_000
NOT_A_MAPPING = "a flow must be a mapping with id, version, title and steps"
MAX_TEXT_LENGTH = 3000
_STEP_ADAPTER: TypeAdapter[AnyStep] = TypeAdapter(Step)


@dataclass
class _Lines:
    """Where each value (and each mapping key) of the document starts, 1-based."""

    keys: dict[PathKey, int] = field(default_factory=dict)
    values: dict[PathKey, int] = field(default_factory=dict)

    def value(self, path: PathKey) -> int:
        for end in range(len(path), -1, -1):
            if path[:end] in self.values:
                return self.values[path[:end]]
        return 1

    def key(self, path: PathKey) -> int:
        return self.keys.get(path) or self.value(path)


class _Composer:
    """Turns a YAML node tree into plain data, recording lines and structural problems."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.lines = _Lines()
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()
        self.constructor = yaml.constructor.SafeConstructor()

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.filename, line, message))

    def convert(self, node: yaml.Node, path: PathKey) -> Any:
        line = node.start_mark.line + 1
        self.lines.values[path] = line
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLargeError(line)
        if id(node) in self.active:
            self.problem(line, "an alias refers to itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            try:
                return self.constructor.construct_object(node, deep=True)
            except yaml.constructor.ConstructorError as error:
                self.problem(line, f"cannot read this value: {error.problem}")
                return None
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key: Any = None
            if isinstance(key_node, yaml.ScalarNode):
                try:
                    key = self.constructor.construct_object(key_node)
                except yaml.constructor.ConstructorError:
                    key = key_node.value
            if not isinstance(key, str):
                self.problem(
                    key_line,
                    f"key {key!r} must be text; put it in quotes"
                    " (YAML reads yes/no/on/off as true/false)",
                )
                key = str(key)
            if key in first_lines:
                self.problem(key_line, f"duplicate key '{key}' (first at line {first_lines[key]})")
            first_lines.setdefault(key, key_line)
            self.lines.keys[(*path, key)] = key_line
            result[key] = self.convert(value_node, (*path, key))
        return result


class _TooLargeError(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _compose(text: str, filename: str) -> tuple[Any, _Lines, list[Problem]]:
    composer = _Composer(filename)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = error.problem or error.context or "unreadable"
        return None, composer.lines, [Problem(filename, line, f"YAML syntax error: {what}")]
    except yaml.YAMLError as error:
        return None, composer.lines, [Problem(filename, 1, f"YAML syntax error: {error}")]
    except RecursionError:
        return None, composer.lines, [Problem(filename, 1, "the document is nested too deeply")]
    if node is None:
        return None, composer.lines, [Problem(filename, 1, "the file is empty")]
    try:
        data = composer.convert(node, ())
    except _TooLargeError as error:
        message = f"the document is too large (more than {MAX_NODES} values)"
        return None, composer.lines, [Problem(filename, error.line, message)]
    except RecursionError:
        return None, composer.lines, [Problem(filename, 1, "the document is nested too deeply")]
    return data, composer.lines, composer.problems


YamlLines = _Lines


def read_yaml_with_lines(text: str, filename: str) -> tuple[Any, YamlLines, list[Problem]]:
    """Any YAML document as plain data, with the line of each value and key, and its
    structural problems (syntax, duplicate keys, non-text keys) as ``file:line``.

    Shared with other YAML documents administrators edit (the service catalogue, the
    report state table), so they report problems the way flows do.
    """
    return _compose(text, filename)


def _locate(loc: Sequence[str | int], data: Any) -> tuple[PathKey, bool]:
    """Follow a pydantic error location through the data, skipping union tags."""
    path: list[str | int] = []
    current = data
    found = False
    for part in loc:
        in_mapping = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        found = in_mapping or in_list
        if found:
            current = current[part]
            path.append(part)
    return tuple(path), found


def _describe(path: PathKey) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _Report:
    """Collects problems, naming steps by id where possible."""

    def __init__(self, filename: str, lines: _Lines, data: Any) -> None:
        self.filename = filename
        self.lines = lines
        self.data = data
        self.problems: list[Problem] = []

    def where(self, path: PathKey) -> tuple[str, PathKey]:
        if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
            steps = self.data.get("steps") if isinstance(self.data, dict) else None
            raw = steps[path[1]] if isinstance(steps, list) and path[1] < len(steps) else None
            step_id = raw.get("id") if isinstance(raw, dict) else None
            label = f"step '{step_id}'" if isinstance(step_id, str) else f"steps[{path[1]}]"
            return label, path[2:]
        return "", path

    def add(self, path: PathKey, message: str, *, line: int | None = None) -> None:
        """Record a problem about the value at ``path`` (at ``line`` if given)."""
        label, rest = self.where(path)
        prefix = ": ".join(part for part in (label, _describe(rest)) if part)
        text = f"{prefix}: {message}" if prefix else message
        self.problems.append(Problem(self.filename, line or self.lines.value(path), text))

    def add_validation(self, error: ValidationError, prefix: PathKey) -> None:
        """Record pydantic's errors, each at the line of the value (or key) it is about."""
        for item in error.errors():
            loc = (*prefix, *item["loc"])
            path, found = _locate(loc, self.data)
            kind = item["type"]
            if kind == "extra_forbidden" and found:
                self.add(path[:-1], f"unknown key '{path[-1]}'", line=self.lines.key(path))
            elif kind == "missing":
                self.add(path, f"missing key '{loc[-1]}'")
            elif kind == "union_tag_invalid":
                tag = (item.get("ctx") or {}).get("tag")
                self.add(
                    path,
                    f"unknown step kind '{tag}' (expected one of: {', '.join(STEP_KINDS)})",
                    line=self.lines.value((*path, "kind")),
                )
            elif kind == "union_tag_not_found":
                self.add(path, "missing key 'kind'")
            else:
                message = str(item["msg"])
                if kind == "value_error":
                    message = str((item.get("ctx") or {}).get("error", message))
                elif kind == "string_type" and isinstance(item.get("input"), bool):
                    message += " (YAML reads yes/no/on/off as true/false: put it in quotes)"
                self.add(path, message)


@dataclass(frozen=True)
class _Scope:
    """What a step may read: answers (with the kinds of steps setting them) and results."""

    answers: Mapping[str, frozenset[str]]
    results: Mapping[str, CallSpec | None]


class _Checker:
    """Checks that need the whole flow: references, graph, translations, calls, names."""

    def __init__(
        self,
        report: _Report,
        steps: Sequence[tuple[int, AnyStep]],
        *,
        all_valid: bool,
        raw_ids: Sequence[str | None],
        extra_ids: set[str],
        extra_names: set[str],
        prefill: Sequence[str],
        languages: Sequence[str],
        registry: CallRegistry,
        profile_fields: Sequence[str],
    ) -> None:
        self.report = report
        self.steps = steps
        self.all_valid = all_valid
        self.ids = {step.id for _, step in steps} | extra_ids
        self.extra_names = extra_names
        self.prefill = tuple(prefill)
        self.languages = tuple(languages)
        self.registry = registry
        self.profile_fields = tuple(profile_fields)
        self.order = [step.id for _, step in steps]
        self.raw_ids = list(raw_ids)
        self.broken_references = False

    # --- graph -------------------------------------------------------------------------

    def following(self, index: int) -> str | None:
        """The id of the step after the one at ``index`` ("" if it has none), or None."""
        if index + 1 >= len(self.raw_ids):
            return None
        return self.raw_ids[index + 1] or ""

    def exits(self, index: int, step: AnyStep) -> list[str]:
        if isinstance(step, EndStep):
            return []
        targets: list[str] = []
        if isinstance(step.next, str):
            targets.append(step.next)
        elif isinstance(step.next, tuple) and step.next:
            targets.extend(branch.goto for branch in step.next)
            if step.next[-1].if_ is not None:
                targets.append(self.following(index) or "")
        else:
            targets.append(self.following(index) or "")
        if isinstance(step, ChoiceStep) and step.options_from and step.options_from.if_empty:
            targets.append(step.options_from.if_empty)
        return [target for target in targets if target in self.ids]

    def no_wait_exits(self, index: int, step: AnyStep) -> list[str]:
        """Exits taken without waiting for the citizen (to find endless loops)."""
        if not isinstance(step, Question | ConfirmStep) or step.skip_if is not None:
            return self.exits(index, step)
        if isinstance(step, ChoiceStep) and step.options_from and step.options_from.if_empty:
            return [step.options_from.if_empty]
        return []

    def graph(self) -> dict[str, list[str]]:
        return {step.id: self.exits(index, step) for index, step in self.steps}

    def ancestors(self, graph: Mapping[str, list[str]]) -> dict[str, set[str]]:
        reverse: dict[str, set[str]] = {node: set() for node in graph}
        for node, targets in graph.items():
            for target in targets:
                reverse.setdefault(target, set()).add(node)
        result: dict[str, set[str]] = {}
        for node in graph:
            seen: set[str] = set()
            stack = list(reverse.get(node, ()))
            while stack:
                current = stack.pop()
                if current not in seen:
                    seen.add(current)
                    stack.extend(reverse.get(current, ()))
            result[node] = seen
        return result

    # --- scopes ------------------------------------------------------------------------

    def scope(self, before: set[str], step: AnyStep | None) -> _Scope:
        answers: dict[str, set[str]] = {name: {"prefill"} for name in self.prefill}
        results: dict[str, CallSpec | None] = {}
        chosen = [s for _, s in self.steps if s.id in before or s is step]
        for candidate in chosen:
            if isinstance(candidate, Question):
                answers.setdefault(candidate.name, set()).add(candidate.kind)
            elif isinstance(candidate, CallStep) and candidate.result:
                results[candidate.result] = self.registry.get(candidate.call)
        for name in self.extra_names:
            answers.setdefault(name, set()).add("?")
            results.setdefault(name, None)
        return _Scope({k: frozenset(v) for k, v in answers.items()}, results)

    def everything(self) -> set[str]:
        return set(self.order)

    def check_name(self, name: Name, scope: _Scope) -> str | None:
        path = name.path
        dotted = name.dotted
        if path[0] not in NAMESPACES or len(path) < 2:
            return f"unknown name '{dotted}': names start with answers., results. or profile."
        if path[0] == "profile":
            if len(path) != 2 or path[1] not in self.profile_fields:
                return f"unknown profile field '{dotted}' (known: {', '.join(self.profile_fields)})"
            return None
        if path[0] == "answers":
            kinds = scope.answers.get(path[1])
            if kinds is None:
                return f"'answers.{path[1]}' is not set by any step before this one"
            if len(path) > 2 and not (
                ("location" in kinds or "?" in kinds)
                and len(path) == 3
                and path[2] in LOCATION_FIELDS
            ):
                return f"'{dotted}': answers.{path[1]} has no field '{'.'.join(path[2:])}'"
            return None
        if path[1] not in scope.results:
            return f"'results.{path[1]}' is not set by any call before this one"
        spec = scope.results[path[1]]
        if len(path) > 2 and spec is not None:
            wanted = ".".join(path[2:])
            declared = list(spec.results)
            if not any(f == wanted or f.startswith(wanted + ".") for f in declared):
                known = ", ".join(declared) or "nothing"
                return f"call '{spec.name}' returns no field '{wanted}' (it returns: {known})"
        return None

    def check_expression(self, path: PathKey, expr_names: Iterator[Name], scope: _Scope) -> None:
        for name in expr_names:
            message = self.check_name(name, scope)
            if message:
                self.report.add(path, message)

    # --- texts -------------------------------------------------------------------------

    def check_text(self, path: PathKey, text: LocalText, scope: _Scope | None) -> None:
        missing = [lang for lang in self.languages if not text.root.get(lang, "").strip()]
        if missing:
            self.report.add(path, f"missing translation for {', '.join(missing)}")
        if not isinstance(text, Text):
            return
        for language, value in text.root.items():
            where = (*path, language)
            if len(value) > MAX_TEXT_LENGTH:
                self.report.add(where, f"text is longer than {MAX_TEXT_LENGTH} characters")
            html_problem = check_html(value)
            if html_problem:
                self.report.add(where, f"bad HTML: {html_problem}")
            try:
                found = placeholders(value)
            except TemplateError as error:
                self.report.add(where, str(error))
                continue
            if scope is not None:
                self.check_expression(where, (Name(tuple(n.split("."))) for n in found), scope)

    def texts_in(self, value: Any, path: PathKey) -> Iterator[tuple[PathKey, LocalText]]:
        if isinstance(value, LocalText):
            yield path, value
        elif isinstance(value, BaseModel):
            for name, info in type(value).model_fields.items():
                yield from self.texts_in(getattr(value, name), (*path, info.alias or name))
        elif isinstance(value, tuple | list):
            for index, item in enumerate(value):
                yield from self.texts_in(item, (*path, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from self.texts_in(item, (*path, key))

    # --- calls -------------------------------------------------------------------------

    def check_call(
        self,
        path: PathKey,
        name: str,
        params: Mapping[str, ParamValue],
        scope: _Scope,
        *,
        name_key: str,
        options: bool,
    ) -> None:
        spec = self.registry.get(name)
        if spec is None:
            self.report.add(
                (*path, name_key),
                f"unknown call '{name}' (known: {', '.join(self.registry.names())})",
            )
            return
        if options and not (spec.kind is CallKind.QUERY and spec.returns_options):
            self.report.add((*path, name_key), f"'{name}' is not a query that returns options")
            return
        fields = spec.params.model_fields
        for key, value in params.items():
            where = (*path, "params", key)
            if key not in fields:
                takes = ", ".join(fields) or "no parameters"
                self.report.add(
                    (*path, "params"),
                    f"call '{name}' has no parameter '{key}' (it takes: {takes})",
                    line=self.report.lines.key(where),
                )
                continue
            if value.literal:
                try:
                    spec.params.model_validate({key: value.source})
                except ValidationError as error:
                    for item in error.errors():
                        if item["loc"][:1] == (key,):
                            self.report.add(where, f"parameter '{key}': {item['msg']}")
            else:
                self.check_expression(where, names(value.expr), scope)
        missing = [k for k, info in fields.items() if info.is_required() and k not in params]
        if missing:
            target = (*path, "params") if params else (*path, name_key)
            self.report.add(
                target,
                f"call '{name}' needs parameter {', '.join(missing)}",
                line=self.report.lines.key(target),
            )

    # --- the whole flow ----------------------------------------------------------------

    def run(self) -> None:
        seen: dict[str, int] = {}
        for index, step in self.steps:
            if step.id in seen:
                line = self.report.lines.value(("steps", seen[step.id], "id"))
                self.add_step(index, f"the id '{step.id}' is used twice (first at line {line})")
            seen.setdefault(step.id, index)

        graph = self.graph()
        before = self.ancestors(graph) if self.all_valid else None
        everything = self.everything()
        for index, step in self.steps:
            ancestors = before[step.id] if before is not None else everything
            self.check_step(index, step, ancestors)
        if self.all_valid and self.steps:
            self.check_graph(graph)

    def check_step(self, index: int, step: AnyStep, before: set[str]) -> None:
        path: PathKey = ("steps", index)
        scope = self.scope(before, None)
        leaving = self.scope(before, step)
        for text_path, text in self.texts_in(step, path):
            self.check_text(text_path, text, scope)
        if isinstance(step, EndStep):
            return
        if step.skip_if is not None:
            self.check_condition((*path, "skip_if"), step.skip_if, scope)
        targets: list[tuple[PathKey, str]] = []
        if isinstance(step.next, str):
            targets.append(((*path, "next"), step.next))
        elif isinstance(step.next, tuple):
            for number, branch in enumerate(step.next):
                targets.append(((*path, "next", number, "goto"), branch.goto))
                if branch.if_ is not None:
                    self.check_condition((*path, "next", number, "if"), branch.if_, leaving)
        if isinstance(step, ChoiceStep) and step.options_from:
            source = step.options_from
            if source.if_empty:
                targets.append(((*path, "options_from", "if_empty"), source.if_empty))
            self.check_call(
                (*path, "options_from"),
                source.query,
                source.params,
                scope,
                name_key="query",
                options=True,
            )
        for target_path, target in targets:
            if target not in self.ids:
                self.report.add(target_path, f"unknown step '{target}'")
                self.broken_references = True
        falls_through = step.next is None or (
            isinstance(step.next, tuple) and (not step.next or step.next[-1].if_ is not None)
        )
        if falls_through and self.following(index) is None:
            self.broken_references = True
            self.add_step(
                index, "is the last step: give it 'next' (with a default) or make it an end"
            )
        if isinstance(step, CallStep):
            self.check_call(path, step.call, step.params, scope, name_key="call", options=False)
        if isinstance(step, ConfirmStep):
            for number, item in enumerate(step.summary):
                if item.answer not in scope.answers:
                    self.report.add(
                        (*path, "summary", number, "answer"),
                        f"'{item.answer}' is not the answer of a step before this one",
                    )

    def add_step(self, index: int, message: str) -> None:
        """A problem about a whole step, at the line of its id."""
        self.report.add(
            ("steps", index), message, line=self.report.lines.value(("steps", index, "id"))
        )

    def check_condition(self, path: PathKey, condition: Condition, scope: _Scope) -> None:
        self.check_expression(path, names(condition.expr), scope)

    def check_graph(self, graph: Mapping[str, list[str]]) -> None:
        index_of = {step.id: index for index, step in self.steps}
        if not self.broken_references:
            # With a dangling reference these would only repeat it in other words.
            self.check_paths(graph)
        no_wait = {step.id: self.no_wait_exits(index, step) for index, step in self.steps}
        for cycle in _cycles(no_wait):
            ordered = sorted(cycle, key=lambda node: index_of[node])
            self.add_step(
                index_of[ordered[0]],
                f"steps {', '.join(ordered)} can loop forever without waiting for an answer",
            )

    def check_paths(self, graph: Mapping[str, list[str]]) -> None:
        first = self.steps[0][1].id
        reached = {first}
        stack = [first]
        while stack:
            for target in graph.get(stack.pop(), []):
                if target not in reached:
                    reached.add(target)
                    stack.append(target)
        for index, step in self.steps:
            if step.id not in reached:
                self.add_step(index, "can never be reached")

        ends = {step.id for _, step in self.steps if isinstance(step, EndStep)}
        reverse: dict[str, set[str]] = {}
        for node, targets in graph.items():
            for target in targets:
                reverse.setdefault(target, set()).add(node)
        finishing = set(ends)
        stack = list(ends)
        while stack:
            for source in reverse.get(stack.pop(), set()):
                if source not in finishing:
                    finishing.add(source)
                    stack.append(source)
        for index, step in self.steps:
            if step.id in reached and step.id not in finishing:
                self.add_step(index, "no end step can be reached from here")


def _cycles(graph: Mapping[str, list[str]]) -> list[set[str]]:
    """Strongly connected components that contain a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = graph.get(node, [])
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, []):
                    found.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def _merge_texts(system: SystemTexts, overrides: Mapping[str, Text]) -> dict[str, dict[str, str]]:
    merged = {key: dict(value) for key, value in system.items()}
    for key, text in overrides.items():
        merged[key] = dict(text.root)
    return merged


_GRAPH_KEYS = frozenset({"id", "kind", "next", "options_from"})


def _salvage_keys(error: ValidationError, depth: int) -> set[str] | None:
    """The keys to drop so the rest can still be checked, or None if that cannot help."""
    keys: set[str] = set()
    for item in error.errors():
        loc = item["loc"]
        if len(loc) <= depth or not isinstance(loc[depth], str) or item["type"] == "missing":
            return None
        keys.add(str(loc[depth]))
    return keys


def _validate_step(raw: Any, index: int, report: _Report) -> tuple[AnyStep | None, bool]:
    """Validate one step; after reporting its errors, retry without the offending keys so
    its other problems are found too. Also says whether its exits are known."""
    try:
        return _STEP_ADAPTER.validate_python(raw), True
    except ValidationError as error:
        report.add_validation(error, ("steps", index))
        keys = _salvage_keys(error, 1) if isinstance(raw, dict) else None
    if not keys or not isinstance(raw, dict):
        return None, False
    try:
        step = _STEP_ADAPTER.validate_python({k: v for k, v in raw.items() if k not in keys})
    except ValidationError:
        return None, False
    return step, not keys & _GRAPH_KEYS


def _validate_header(data: dict[str, Any], languages: Sequence[str], report: _Report) -> FlowHeader:
    """Validate the top level; on errors, stand-ins replace the bad keys (already reported)
    so that the steps can still be checked."""
    try:
        return FlowHeader.model_validate(data)
    except ValidationError as error:
        report.add_validation(error, ())
        bad = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
    stand_ins: dict[str, Any] = {
        "id": "flow",
        "version": 1,
        "title": dict.fromkeys(languages, "…"),
        "steps": [None],
    }
    cleaned = {k: v for k, v in data.items() if k not in bad and k in FlowHeader.model_fields}
    for key, value in stand_ins.items():
        cleaned.setdefault(key, value)
    try:
        return FlowHeader.model_validate(cleaned)
    except ValidationError:  # pragma: no cover - the stand-ins are valid
        return FlowHeader.model_validate(stand_ins)


def load_flow(
    text: str,
    *,
    filename: str,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    registry: CallRegistry,
    system_texts: SystemTexts | None = None,
    profile_fields: Sequence[str] = PROFILE_FIELDS,
) -> Flow:
    """Validate a flow document; raise FlowError listing every problem as ``file:line: ...``."""
    if not languages:
        raise ValueError("enable at least one language")
    data, lines, problems = _compose(text, filename)
    if data is None:
        # A document that is only a null ("~", "null") composes without problems.
        raise FlowError(problems or [Problem(filename, 1, NOT_A_MAPPING)])
    report = _Report(filename, lines, data)
    report.problems.extend(problems)
    if not isinstance(data, dict):
        report.add((), NOT_A_MAPPING)
        raise FlowError(report.problems)

    header = _validate_header(data, languages, report)
    raw_steps: list[Any] = data["steps"] if isinstance(data.get("steps"), list) else []
    steps: list[tuple[int, AnyStep]] = []
    graph_intact = True
    extra_ids: set[str] = set()
    extra_names: set[str] = set()
    for index, raw in enumerate(raw_steps):
        step, intact = _validate_step(raw, index, report)
        graph_intact = graph_intact and intact
        if step is not None:
            steps.append((index, step))
        if step is None and isinstance(raw, dict):
            extra_ids |= {v for v in (raw.get("id"),) if isinstance(v, str)}
            named = (raw.get("name"), raw.get("result"))
            extra_names |= {v for v in named if isinstance(v, str)}

    all_valid = graph_intact and len(steps) == len(raw_steps)
    prefill = header.prefill
    raw_ids = [
        raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        for raw in raw_steps
    ]
    checker = _Checker(
        report,
        steps,
        all_valid=all_valid,
        raw_ids=raw_ids,
        extra_ids=extra_ids,
        extra_names=extra_names,
        prefill=prefill,
        languages=languages,
        registry=registry,
        profile_fields=profile_fields,
    )
    checker.run()

    system = system_texts if system_texts is not None else load_system_texts()
    checker.check_text(("title",), header.title, None)
    if header.triggers.menu_label is not None:
        checker.check_text(("triggers", "menu_label"), header.triggers.menu_label, None)
    known = {key.value for key in SystemText}
    for key, override in header.texts.items():
        if key not in known:
            report.add(("texts",), f"unknown system text '{key}'", line=lines.key(("texts", key)))
        else:
            checker.check_text(("texts", key), override, None)
    merged = _merge_texts(system, header.texts)
    for language in languages:
        lacking = [k.value for k in SystemText if not merged.get(k.value, {}).get(language)]
        if lacking:
            report.add(
                ("texts",),
                f"the engine has no '{language}' text for {', '.join(lacking)}:"
                " add them under texts:",
            )

    if report.problems:
        raise FlowError(sorted(report.problems, key=lambda p: p.line))
    fields = {name: getattr(header, name) for name in FlowHeader.model_fields if name != "steps"}
    definition = FlowDefinition.model_validate({**fields, "steps": [step for _, step in steps]})
    return Flow(
        definition=definition,
        languages=tuple(languages),
        system_texts=_merge_texts(system, header.texts),
        registry=registry,
        filename=filename,
    )


def load_flow_file(
    path: str | Path,
    *,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    registry: CallRegistry,
    system_texts: SystemTexts | None = None,
    profile_fields: Sequence[str] = PROFILE_FIELDS,
) -> Flow:
    """Read and load one flow file (the only I/O of the package besides its own data)."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FlowError([Problem(filename, 1, f"cannot read the file: {error}")]) from error
    return load_flow(
        text,
        filename=filename,
        languages=languages,
        registry=registry,
        system_texts=system_texts,
        profile_fields=profile_fields,
    )


def load_builtin_flows(
    *,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    registry: CallRegistry,
    system_texts: SystemTexts | None = None,
    profile_fields: Sequence[str] = PROFILE_FIELDS,
) -> dict[str, Flow]:
    """Load the flows shipped in ``dialogs/flows``, by id; problems of all files together."""
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    folder = resources.files("dialogs").joinpath("flows")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".yaml"):
            continue
        filename = f"dialogs/flows/{entry.name}"
        try:
            flow = load_flow(
                entry.read_text(encoding="utf-8"),
                filename=filename,
                languages=languages,
                registry=registry,
                system_texts=system_texts,
                profile_fields=profile_fields,
            )
        except FlowError as error:
            problems.extend(error.problems)
            continue
        if flow.id in flows:
            problems.append(
                Problem(
                    filename, 1, f"flow id '{flow.id}' is also used by {flows[flow.id].filename}"
                )
            )
        flows[flow.id] = flow
    if problems:
        raise FlowError(problems)
    return flows
