"""The dialog flow engine: flows as YAML data, validated into models, run by a pure interpreter.

Nothing here imports the bot, the database or Telegram; time comes in through
:class:`Context`. The host loads flows once (:func:`load_builtin_flows`,
:func:`load_flow`), keeps each conversation's :class:`SessionState` as JSON, and for
every citizen input calls :meth:`Engine.handle`, sends the messages, runs the
returned :class:`Call` if any and feeds its result to :meth:`Engine.resume`.
"""

from dialogs.conditions import Condition, ConditionSyntaxError
from dialogs.engine import Engine
from dialogs.errors import FlowError, Problem
from dialogs.html import check_html, escape
from dialogs.loader import (
    DEFAULT_LANGUAGES,
    PROFILE_FIELDS,
    load_builtin_flows,
    load_flow,
    load_flow_file,
)
from dialogs.models import Flow, FlowDefinition, Triggers
from dialogs.registry import CallKind, CallRegistry, CallSpec, builtin_registry
from dialogs.state import (
    CALLBACK_PREFIX,
    ButtonInput,
    Call,
    CommandInput,
    Context,
    InlineButton,
    Input,
    LocationInput,
    OutMessage,
    PhotoInput,
    ReplyButton,
    Result,
    SessionState,
    Status,
    TextInput,
    UnsupportedInput,
)
from dialogs.texts import SystemText, load_system_texts

__all__ = [
    "CALLBACK_PREFIX",
    "DEFAULT_LANGUAGES",
    "PROFILE_FIELDS",
    "ButtonInput",
    "Call",
    "CallKind",
    "CallRegistry",
    "CallSpec",
    "CommandInput",
    "Condition",
    "ConditionSyntaxError",
    "Context",
    "Engine",
    "Flow",
    "FlowDefinition",
    "FlowError",
    "InlineButton",
    "Input",
    "LocationInput",
    "OutMessage",
    "PhotoInput",
    "Problem",
    "ReplyButton",
    "Result",
    "SessionState",
    "Status",
    "SystemText",
    "TextInput",
    "Triggers",
    "UnsupportedInput",
    "builtin_registry",
    "check_html",
    "escape",
    "load_builtin_flows",
    "load_flow",
    "load_flow_file",
    "load_system_texts",
]
