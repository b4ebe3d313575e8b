"""The Bot API side: `/bot<token>/<method>` and `/file/bot<token>/<path>`.

Every call goes through `BotApi.execute`, which logs it, applies fault rules and
flood limits, and turns `BotApiError` into Telegram's error body. Method handlers
below mirror the Bot API documentation; each returns the `result` object.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.errors import (
    DEFAULT_DESCRIPTIONS,
    BotApiError,
    bad_request,
    conflict,
    forbidden,
    not_found,
    too_many_requests,
)
from bot.emulator.markup import Markup, parse_inline_keyboard, parse_markup
from bot.emulator.media import guess_mime_type
from bot.emulator.params import Params, Upload, read_params
from bot.emulator.state import (
    BotWorld,
    CallbackAnswer,
    ChatState,
    PollTicket,
    StoredMessage,
    WebhookConfig,
)
from bot.emulator.textparse import MAX_CAPTION_LENGTH, MAX_TEXT_LENGTH, FormattedText, format_text

if TYPE_CHECKING:
    from bot.emulator.hub import Hub
    from bot.emulator.webhook import WebhookDispatcher

log = logging.getLogger(__name__)

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
MAX_POLL_TIMEOUT = 60
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_CHAT_ACTION_SECONDS = 5
_MEDIA_KINDS = (
    "photo",
    "document",
    "audio",
    "voice",
    "video",
    "animation",
    "sticker",
    "video_note",
)


@dataclass(frozen=True, slots=True)
class Described:
    """A result Telegram accompanies with a `description` (setWebhook and friends)."""

    result: Any
    description: str


@dataclass(slots=True)
class Outcome:
    """What an executed call answers over HTTP."""

    status: int
    body: dict[str, Any]
    drop_connection: bool = False


@dataclass(slots=True)
class Call:
    """One method invocation being handled."""

    world: BotWorld
    method: str
    params: Params


Handler = Callable[["BotApi", Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A Bot API method: its canonical name and handler."""

    name: str
    handler: Handler


_METHODS: dict[str, MethodSpec] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a handler under a Bot API method name (matched case-insensitively)."""

    def register(handler: Handler) -> Handler:
        _METHODS[name.lower()] = MethodSpec(name, handler)
        return handler

    return register


def method_names() -> list[str]:
    """Every supported Bot API method, as documented."""
    return sorted(spec.name for spec in _METHODS.values())


def _now() -> int:
    return int(time.time())


def _entities_key(formatted: FormattedText) -> tuple[str, str]:
    return formatted.text, json.dumps(formatted.entities, sort_keys=True)


class BotApi:
    """Executes Bot API calls against the hub's worlds."""

    def __init__(self, hub: Hub, webhooks: WebhookDispatcher) -> None:
        self.hub = hub
        self.webhooks = webhooks

    # --- HTTP --------------------------------------------------------------------

    async def handle_method(self, request: web.Request) -> web.StreamResponse:
        """`GET|POST /bot<token>/<method>`."""
        try:
            world = self.hub.world_for_token(request.match_info["token"])
            params = await read_params(request)
        except BotApiError as error:
            return web.json_response(error.to_json(), status=error.error_code)
        outcome = await self.execute(world, request.match_info["method"], params, source="http")
        if outcome.drop_connection:
            if request.transport is not None:
                request.transport.abort()
            # Nothing reaches the client; the response only ends the handler cleanly.
            return web.Response(status=499)
        return web.json_response(outcome.body, status=outcome.status)

    async def handle_file(self, request: web.Request) -> web.StreamResponse:
        """`GET /file/bot<token>/<file_path>`: the bytes of a file getFile described."""
        try:
            self.hub.world_for_token(request.match_info["token"])
        except BotApiError as error:
            return web.json_response(error.to_json(), status=error.error_code)
        stored = self.hub.files.by_path(request.match_info["path"])
        if stored is None:
            return web.json_response(not_found().to_json(), status=404)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # --- dispatch ----------------------------------------------------------------

    async def execute(self, world: BotWorld, name: str, params: Params, *, source: str) -> Outcome:
        """Run one call with logging, faults and error mapping."""
        spec = _METHODS.get(name.lower())
        record = self.hub.calls.start(
            bot_id=world.bot_id,
            method=spec.name if spec else name,
            params=params.summary(),
            source=source,
        )
        outcome = Outcome(200, {})
        try:
            if spec is None:
                raise not_found()
            outcome = await self._run(spec, Call(world, spec.name, params), record.chat_id)
        except BotApiError as error:
            outcome = Outcome(error.error_code, error.to_json())
        except (TypeError, ValueError) as error:
            # Parameters of the wrong shape deep inside an object (a reply_parameters
            # message_id that is not a number, ...): Telegram answers 400 for those too.
            outcome = Outcome(400, bad_request(f"invalid parameters: {error}").to_json())
        except Exception:
            log.exception("emulator bug while handling %s", record.method)
            outcome = Outcome(500, BotApiError(500, "Internal Server Error").to_json())
        finally:
            record.status = outcome.status
            record.ok = outcome.status == 200 and not outcome.drop_connection
            record.dropped = outcome.drop_connection
            description = outcome.body.get("description")
            record.description = description if isinstance(description, str) else None
            result = outcome.body.get("result")
            if isinstance(result, dict) and isinstance(result.get("message_id"), int):
                record.message_id = result["message_id"]
            elif isinstance(result, list) and record.method == "getUpdates":
                record.update_ids = [update["update_id"] for update in result]
            self.hub.calls.finish(record)
        log.debug("%s %s -> %s", source, record.method, outcome.status)
        return outcome

    async def _run(self, spec: MethodSpec, call: Call, chat_id: int | None) -> Outcome:
        fault = self.hub.faults.take(spec.name, chat_id)
        result: Any = None
        executed = False
        if fault is not None:
            log.info("fault injected into %s (rule %s)", spec.name, fault.id)
            if fault.delay > 0:
                # Interrupted by shutdown, so a long simulated timeout never holds it up.
                await self.hub.closed.wait(fault.delay)
            if fault.after_effect:
                result, executed = await spec.handler(self, call), True
            if fault.drop_connection:
                return Outcome(0, {}, drop_connection=True)
            if fault.error_code is not None:
                raise _fault_error(fault.error_code, fault.description, fault.retry_after)
        if not executed:
            result = await spec.handler(self, call)
        body: dict[str, Any] = {"ok": True}
        if isinstance(result, Described):
            body["result"] = result.result
            body["description"] = result.description
        else:
            body["result"] = result
        return Outcome(200, body)

    # --- helpers shared by handlers ----------------------------------------------

    def chat_for(self, call: Call, *, allow_blocked: bool = False) -> ChatState:
        """The chat of `chat_id`; 400 if the bot never met it, 403 if it blocked the bot."""
        raw = call.params.get_str("chat_id")
        if not raw:
            raise bad_request("chat_id is empty")
        try:
            chat_id = int(raw)
        except ValueError:
            raise bad_request("chat not found") from None
        chat = call.world.chat(chat_id)
        if chat is None:
            raise bad_request("chat not found")
        if not allow_blocked and chat_id in call.world.blocked:
            raise forbidden("bot was blocked by the user")
        return chat

    def check_flood(self, call: Call, chat: ChatState) -> bool:
        """429 if a send to `chat` now exceeds a flood limit; returns whether it is paid."""
        paid = call.params.get_bool("allow_paid_broadcast")
        retry_after = self.hub.limiter.check(call.world.bot_id, chat.id, paid=paid)
        if retry_after is not None:
            raise too_many_requests(retry_after)
        return paid

    def reply_target(self, call: Call, chat: ChatState) -> dict[str, Any] | None:
        """The message replied to (reply_parameters or the legacy reply_to_message_id)."""
        params = call.params
        reply = params.get_json("reply_parameters")
        if reply is not None and not isinstance(reply, dict):
            raise bad_request("can't parse reply parameters JSON object")
        message_id = reply.get("message_id") if reply else params.get_int("reply_to_message_id")
        if message_id is None:
            return None
        allow_missing = (
            bool(reply.get("allow_sending_without_reply"))
            if reply
            else params.get_bool("allow_sending_without_reply")
        )
        target = chat.live_message(int(message_id))
        if target is None:
            if allow_missing:
                return None
            raise bad_request("message to be replied not found")
        replied = dict(target.data)
        replied.pop("reply_to_message", None)
        return replied

    def caption_param(self, call: Call) -> FormattedText:
        """The formatted caption (possibly empty)."""
        params = call.params
        return format_text(
            params.get_str("caption") or "",
            parse_mode=params.get_str("parse_mode"),
            entities=params.get_json("caption_entities")
            if params.has("caption_entities")
            else None,
            max_length=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
        )

    def text_param(self, call: Call) -> FormattedText:
        """The formatted text; 400 when empty."""
        params = call.params
        formatted = format_text(
            params.get_str("text") or "",
            parse_mode=params.get_str("parse_mode"),
            entities=params.get_json("entities") if params.has("entities") else None,
            max_length=MAX_TEXT_LENGTH,
            too_long="message is too long",
        )
        if not formatted.text:
            raise bad_request("message text is empty")
        return formatted

    def send(
        self,
        call: Call,
        chat: ChatState,
        content: dict[str, Any],
        *,
        markup: Markup,
        reply_to: dict[str, Any] | None,
        paid: bool,
        file_id: str | None = None,
    ) -> StoredMessage:
        """Store a bot message, apply its keyboard to the chat, count it for flood control."""
        if reply_to is not None:
            content = {**content, "reply_to_message": reply_to}
        if markup.inline is not None:
            content = {**content, "reply_markup": markup.inline}
        reply_keyboard = markup.reply or markup.force_reply
        if markup.remove_keyboard:
            reply_keyboard = {"remove_keyboard": True}
        if call.params.get_bool("protect_content"):
            content = {**content, "has_protected_content": True}
        stored = self.hub.add_message(
            call.world,
            chat,
            sender=None,
            content=content,
            reply_keyboard=reply_keyboard,
            file_id=file_id,
        )
        if markup.reply is not None:
            chat.keyboard = {**markup.reply, "message_id": stored.message_id, "collapsed": False}
        elif markup.remove_keyboard:
            chat.keyboard = None
        chat.chat_action = None
        self.hub.limiter.record(call.world.bot_id, chat.id, paid=paid)
        return stored

    def formatted_fields(
        self, formatted: FormattedText, text_key: str, entities_key: str
    ) -> dict[str, Any]:
        """`text`/`caption` and their entities as Message fields, omitting empty ones."""
        fields: dict[str, Any] = {}
        if formatted.text:
            fields[text_key] = formatted.text
        if formatted.entities:
            fields[entities_key] = formatted.entities
        return fields

    def resolve_file(self, call: Call, field: str, kind: str) -> tuple[Upload | None, str | None]:
        """An upload to store, or the file_id of a stored file of the right kind."""
        value = call.params.get_file(field)
        if value is None:
            raise bad_request(f"there is no {field} in the request")
        if isinstance(value, Upload):
            return value, None
        if value.startswith(("http://", "https://")):
            # The emulator has no Internet to fetch from; Telegram would fail the same way
            # for an unreachable URL.
            raise bad_request("wrong file identifier/HTTP URL specified")
        stored = self.hub.files.get(value)
        if stored is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad_request(
                f"can't use file of type {stored.kind.title()} as {kind.replace('_', ' ').title()}"
            )
        return None, stored.file_id

    def editable(self, call: Call) -> tuple[ChatState, StoredMessage]:
        """The bot message an edit* call targets."""
        if call.params.has("inline_message_id") and not call.params.has("chat_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self.chat_for(call)
        message_id = call.params.require_int(
            "message_id", empty="message identifier is not specified"
        )
        stored = chat.live_message(message_id)
        if stored is None:
            raise bad_request("message to edit not found")
        if not stored.from_bot:
            raise bad_request("message can't be edited")
        return chat, stored

    def apply_edit(
        self, chat: ChatState, stored: StoredMessage, changes: dict[str, Any], removed: list[str]
    ) -> dict[str, Any]:
        """Apply an edit, or refuse it as "not modified" when nothing changes."""
        before = {key: value for key, value in stored.data.items() if key != "edit_date"}
        after = {**before, **changes}
        for key in removed:
            after.pop(key, None)
        if after == before:
            raise bad_request(NOT_MODIFIED)
        after["edit_date"] = _now()
        stored.data = after
        stored.revision = chat.bump()
        return after

    def inline_markup_param(self, call: Call) -> dict[str, Any] | None:
        """An edit's reply_markup: inline keyboards only; None removes the keyboard."""
        raw = call.params.get_json("reply_markup")
        return None if raw is None else parse_inline_keyboard(raw)


def _fault_error(code: int, description: str | None, retry_after: int | None) -> BotApiError:
    if code == 429:
        retry_after = max(1, retry_after or 1)
        return BotApiError(
            code,
            description or f"Too Many Requests: retry after {retry_after}",
            retry_after=retry_after,
        )
    return BotApiError(
        code, description or DEFAULT_DESCRIPTIONS.get(code, "Error"), retry_after=retry_after
    )


def _markup_changes(inline: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    if inline is None:
        return {}, ["reply_markup"]
    return {"reply_markup": inline}, []


# --- getting updates -----------------------------------------------------------------


@method("getMe")
async def get_me(api: BotApi, call: Call) -> Any:
    return {
        **call.world.bot_user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


def _allowed_updates(params: Params) -> list[str] | None:
    raw = params.get_json("allowed_updates")
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise bad_request("can't parse allowed updates JSON object")
    return list(raw)


@method("getUpdates")
async def get_updates(api: BotApi, call: Call) -> Any:
    world, params = call.world, call.params
    if world.webhook is not None:
        raise conflict(
            "can't use getUpdates method while webhook is active; "
            "use deleteWebhook to delete the webhook first"
        )
    limit = min(max(params.get_int("limit") or 100, 1), 100)
    timeout = min(max(params.get_int("timeout") or 0, 0), MAX_POLL_TIMEOUT)
    if params.has("allowed_updates"):
        world.queue.allowed_updates = _allowed_updates(params)
    world.queue.confirm(params.get_int("offset") or 0)
    ticket = PollTicket()
    if world.poll is not None:
        world.poll.conflict = (
            "terminated by other getUpdates request; "
            "make sure that only one bot instance is running"
        )
        world.queue.changed.notify()
    world.poll = ticket
    deadline = api.hub.clock() + timeout
    try:
        while True:
            if ticket.conflict is not None:
                raise conflict(ticket.conflict)
            if world.closed or api.hub.closing:
                return []
            batch = world.queue.take(limit)
            if batch:
                return [entry.payload for entry in batch]
            remaining = deadline - api.hub.clock()
            if remaining <= 0:
                return []
            await world.queue.changed.wait(remaining)
    finally:
        if world.poll is ticket:
            world.poll = None


@method("setWebhook")
async def set_webhook(api: BotApi, call: Call) -> Any:
    world, params = call.world, call.params
    url = params.get_str("url") or ""
    if not url:
        return await delete_webhook(api, call)
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = params.get_str("secret_token")
    if secret is not None and (
        not 1 <= len(secret) <= 256
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret)
    ):
        raise bad_request("secret token contains unallowed characters")
    max_connections = params.get_int("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    allowed = _allowed_updates(params) if params.has("allowed_updates") else None
    if params.get_bool("drop_pending_updates"):
        world.queue.clear()
    if params.has("allowed_updates"):
        world.queue.allowed_updates = allowed
    if world.poll is not None:
        world.poll.conflict = "terminated by setWebhook request"
        world.queue.changed.notify()
    previous = world.webhook
    same = previous is not None and previous.url == url and previous.secret_token == secret
    world.webhook = WebhookConfig(
        url=url,
        secret_token=secret,
        max_connections=max_connections,
        allowed_updates=world.queue.allowed_updates,
    )
    api.webhooks.configure(world)
    return Described(True, "Webhook is already set" if same else "Webhook was set")


@method("deleteWebhook")
async def delete_webhook(api: BotApi, call: Call) -> Any:
    world = call.world
    if call.params.get_bool("drop_pending_updates"):
        world.queue.clear()
    had_webhook = world.webhook is not None
    world.webhook = None
    api.webhooks.configure(world)
    return Described(True, "Webhook was deleted" if had_webhook else "Webhook is already deleted")


@method("getWebhookInfo")
async def get_webhook_info(api: BotApi, call: Call) -> Any:
    world = call.world
    config = world.webhook
    info: dict[str, Any] = {
        "url": config.url if config else "",
        "has_custom_certificate": False,
        "pending_update_count": len(world.queue.entries),
    }
    if config is not None:
        info["ip_address"] = config.ip_address
        info["max_connections"] = config.max_connections
        if config.allowed_updates:
            info["allowed_updates"] = config.allowed_updates
        if config.last_error_date is not None:
            info["last_error_date"] = config.last_error_date
            info["last_error_message"] = config.last_error_message
    return info


@method("close")
async def close_bot(api: BotApi, call: Call) -> Any:
    return True


@method("logOut")
async def log_out(api: BotApi, call: Call) -> Any:
    return True


# --- sending ---------------------------------------------------------------------------


@method("sendMessage")
async def send_message(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    formatted = api.text_param(call)
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    content = api.formatted_fields(formatted, "text", "entities")
    link_preview = call.params.get_json("link_preview_options")
    if isinstance(link_preview, dict) and link_preview:
        content["link_preview_options"] = link_preview
    return api.send(call, chat, content, markup=markup, reply_to=reply_to, paid=paid).data


@method("sendPhoto")
async def send_photo(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    upload, file_id = api.resolve_file(call, "photo", "photo")
    caption = api.caption_param(call)
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    if upload is not None:
        sizes = api.hub.files.add_photo(upload.data)
    else:
        stored_file = api.hub.files.get(file_id or "")
        sizes = list(stored_file.photo_sizes) if stored_file else []
    content: dict[str, Any] = {"photo": sizes}
    content.update(api.formatted_fields(caption, "caption", "caption_entities"))
    if call.params.get_bool("has_spoiler"):
        content["has_media_spoiler"] = True
    if call.params.get_bool("show_caption_above_media"):
        content["show_caption_above_media"] = True
    largest = sizes[-1]["file_id"] if sizes else None
    stored = api.send(
        call, chat, content, markup=markup, reply_to=reply_to, paid=paid, file_id=largest
    )
    return stored.data


def _media_extra(kind: str, params: Params) -> dict[str, Any]:
    """Fields Telegram reports for a non-photo file of this kind."""
    duration = params.get_int("duration") or 0
    width, height = params.get_int("width") or 0, params.get_int("height") or 0
    if kind in ("voice", "audio"):
        extra: dict[str, Any] = {"duration": duration}
        if kind == "audio":
            for key in ("performer", "title"):
                if value := params.get_str(key):
                    extra[key] = value
        return extra
    if kind in ("video", "animation"):
        return {"width": width or 640, "height": height or 360, "duration": duration}
    if kind == "video_note":
        return {"length": params.get_int("length") or 240, "duration": duration}
    if kind == "sticker":
        extra = {
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        }
        if emoji := params.get_str("emoji"):
            extra["emoji"] = emoji
        return extra
    return {}


_DEFAULT_MIME = {"voice": "audio/ogg", "sticker": "image/webp", "video_note": "video/mp4"}


async def _send_file(api: BotApi, call: Call, kind: str) -> Any:
    chat = api.chat_for(call)
    upload, file_id = api.resolve_file(call, kind, kind)
    caption = (
        api.caption_param(call) if kind not in ("sticker", "video_note") else FormattedText("")
    )
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    if upload is not None:
        file_name = (
            upload.file_name if kind in ("document", "audio", "video", "animation") else None
        )
        stored_file = api.hub.files.add_file(
            kind,
            upload.data,
            file_name=file_name,
            mime_type=guess_mime_type(upload.file_name, upload.content_type)
            or _DEFAULT_MIME.get(kind),
            extra=_media_extra(kind, call.params),
        )
    else:
        found = api.hub.files.get(file_id or "")
        assert found is not None  # resolve_file checked it exists
        stored_file = found
    content: dict[str, Any] = {kind: stored_file.media_object()}
    content.update(api.formatted_fields(caption, "caption", "caption_entities"))
    stored = api.send(
        call,
        chat,
        content,
        markup=markup,
        reply_to=reply_to,
        paid=paid,
        file_id=stored_file.file_id,
    )
    return stored.data


@method("sendDocument")
async def send_document(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "document")


@method("sendAudio")
async def send_audio(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "audio")


@method("sendVoice")
async def send_voice(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "voice")


@method("sendVideo")
async def send_video(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "video")


@method("sendAnimation")
async def send_animation(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "animation")


@method("sendSticker")
async def send_sticker(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "sticker")


@method("sendVideoNote")
async def send_video_note(api: BotApi, call: Call) -> Any:
    return await _send_file(api, call, "video_note")


def _coordinates(params: Params) -> dict[str, Any]:
    latitude, longitude = params.get_float("latitude"), params.get_float("longitude")
    if latitude is None or longitude is None:
        raise bad_request("latitude and longitude must be specified")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise bad_request("wrong latitude or longitude specified")
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if (accuracy := params.get_float("horizontal_accuracy")) is not None:
        location["horizontal_accuracy"] = accuracy
    return location


@method("sendLocation")
async def send_location(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    location = _coordinates(call.params)
    if (live_period := call.params.get_int("live_period")) is not None:
        location["live_period"] = live_period
    if (heading := call.params.get_int("heading")) is not None:
        location["heading"] = heading
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    content = {"location": location}
    return api.send(call, chat, content, markup=markup, reply_to=reply_to, paid=paid).data


@method("sendVenue")
async def send_venue(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    location = _coordinates(call.params)
    title = call.params.require_str("title")
    address = call.params.require_str("address")
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    content = {
        "venue": {"location": location, "title": title, "address": address},
        "location": location,
    }
    return api.send(call, chat, content, markup=markup, reply_to=reply_to, paid=paid).data


@method("sendContact")
async def send_contact(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    contact = {
        "phone_number": call.params.require_str("phone_number"),
        "first_name": call.params.require_str("first_name"),
    }
    if last_name := call.params.get_str("last_name"):
        contact["last_name"] = last_name
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    content = {"contact": contact}
    return api.send(call, chat, content, markup=markup, reply_to=reply_to, paid=paid).data


@method("sendMediaGroup")
async def send_media_group(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    media = call.params.get_json("media")
    if not isinstance(media, list) or not 2 <= len(media) <= 10:
        raise bad_request("wrong number of media specified: must be 2-10")
    prepared: list[tuple[str, dict[str, Any], FormattedText]] = []
    for item in media:
        if not isinstance(item, dict) or item.get("type") not in (
            "photo",
            "document",
            "video",
            "audio",
        ):
            raise bad_request("can't parse InputMedia JSON object")
        kind = str(item["type"])
        caption = format_text(
            str(item.get("caption") or ""),
            parse_mode=item.get("parse_mode"),
            entities=item.get("caption_entities"),
            max_length=MAX_CAPTION_LENGTH,
            too_long="message caption is too long",
        )
        prepared.append((kind, item, caption))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    group_id = str(int(time.time() * 1000))
    results: list[dict[str, Any]] = []
    for kind, item, caption in prepared:
        sub_call = Call(
            call.world, call.method, Params({kind: item.get("media")}, call.params.uploads)
        )
        upload, file_id = api.resolve_file(sub_call, kind, kind)
        file_key: str | None
        if kind == "photo":
            if upload is not None:
                sizes = api.hub.files.add_photo(upload.data)
            else:
                found = api.hub.files.get(file_id or "")
                sizes = list(found.photo_sizes) if found else []
            media_object: Any = sizes
            file_key = sizes[-1]["file_id"] if sizes else None
        else:
            if upload is not None:
                stored_file = api.hub.files.add_file(
                    kind,
                    upload.data,
                    file_name=upload.file_name,
                    mime_type=guess_mime_type(upload.file_name, upload.content_type),
                    extra=_media_extra(kind, Params(item)),
                )
            else:
                found = api.hub.files.get(file_id or "")
                assert found is not None
                stored_file = found
            media_object, file_key = stored_file.media_object(), stored_file.file_id
        content: dict[str, Any] = {"media_group_id": group_id, kind: media_object}
        content.update(api.formatted_fields(caption, "caption", "caption_entities"))
        stored = api.send(
            call, chat, content, markup=Markup(), reply_to=reply_to, paid=paid, file_id=file_key
        )
        results.append(stored.data)
    return results


def _source_message(api: BotApi, call: Call) -> StoredMessage:
    from_chat_id = call.params.require_int("from_chat_id")
    source_chat = call.world.chat(from_chat_id)
    if source_chat is None:
        raise bad_request("chat not found")
    message_id = call.params.require_int("message_id")
    source = source_chat.live_message(message_id)
    if source is None:
        raise bad_request("message to copy not found")
    return source


_COPIED_KEYS = (
    "text",
    "entities",
    "caption",
    "caption_entities",
    "location",
    "venue",
    "contact",
    *_MEDIA_KINDS,
)


@method("copyMessage")
async def copy_message(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    source = _source_message(api, call)
    content = {key: source.data[key] for key in _COPIED_KEYS if key in source.data}
    if call.params.has("caption"):
        content.pop("caption", None)
        content.pop("caption_entities", None)
        content.update(api.formatted_fields(api.caption_param(call), "caption", "caption_entities"))
    markup = parse_markup(call.params.get_json("reply_markup"))
    reply_to = api.reply_target(call, chat)
    paid = api.check_flood(call, chat)
    stored = api.send(
        call, chat, content, markup=markup, reply_to=reply_to, paid=paid, file_id=source.file_id
    )
    return {"message_id": stored.message_id}


@method("forwardMessage")
async def forward_message(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    source = _source_message(api, call)
    content = {key: source.data[key] for key in _COPIED_KEYS if key in source.data}
    sender = source.data.get("from", {})
    content["forward_origin"] = {"type": "user", "date": source.data["date"], "sender_user": sender}
    paid = api.check_flood(call, chat)
    stored = api.send(
        call, chat, content, markup=Markup(), reply_to=None, paid=paid, file_id=source.file_id
    )
    return stored.data


@method("sendChatAction")
async def send_chat_action(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    action = call.params.get_str("action")
    if action not in _CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.chat_action = (action, time.time() + _CHAT_ACTION_SECONDS)
    chat.bump()
    return True


# --- editing and deleting --------------------------------------------------------------


@method("editMessageText")
async def edit_message_text(api: BotApi, call: Call) -> Any:
    chat, stored = api.editable(call)
    if "text" not in stored.data:
        raise bad_request("there is no text in the message to edit")
    formatted = api.text_param(call)
    markup_changes, removed = _markup_changes(api.inline_markup_param(call))
    changes = {"text": formatted.text, **markup_changes}
    if formatted.entities:
        changes["entities"] = formatted.entities
    else:
        removed.append("entities")
    return api.apply_edit(chat, stored, changes, removed)


@method("editMessageCaption")
async def edit_message_caption(api: BotApi, call: Call) -> Any:
    chat, stored = api.editable(call)
    if not any(kind in stored.data for kind in _MEDIA_KINDS):
        raise bad_request("there is no caption in the message to edit")
    caption = api.caption_param(call)
    markup_changes, removed = _markup_changes(api.inline_markup_param(call))
    changes = {**markup_changes, **api.formatted_fields(caption, "caption", "caption_entities")}
    removed += [key for key in ("caption", "caption_entities") if key not in changes]
    return api.apply_edit(chat, stored, changes, removed)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(api: BotApi, call: Call) -> Any:
    chat, stored = api.editable(call)
    changes, removed = _markup_changes(api.inline_markup_param(call))
    return api.apply_edit(chat, stored, changes, removed)


@method("deleteMessage")
async def delete_message(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call, allow_blocked=True)
    message_id = call.params.require_int("message_id", empty="message identifier is not specified")
    stored = chat.live_message(message_id)
    if stored is None:
        raise bad_request("message to delete not found")
    stored.deleted = True
    stored.revision = chat.bump()
    return True


@method("deleteMessages")
async def delete_messages(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call, allow_blocked=True)
    ids = call.params.get_json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must be a list of 1-100 message identifiers")
    for message_id in ids:
        stored = chat.live_message(int(message_id))
        if stored is not None:
            stored.deleted = True
            stored.revision = chat.bump()
    return True


@method("answerCallbackQuery")
async def answer_callback_query(api: BotApi, call: Call) -> Any:
    query_id = call.params.get_str("callback_query_id") or ""
    pending = call.world.callbacks.get(query_id)
    if pending is None or pending.answer is not None:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    text = call.params.get_str("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    pending.answer = CallbackAnswer(
        callback_query_id=query_id,
        message_id=pending.message_id,
        data=pending.data,
        text=text,
        show_alert=call.params.get_bool("show_alert"),
        url=call.params.get_str("url"),
        revision=0,
        date=_now(),
    )
    chat = call.world.chat(pending.chat_id)
    if chat is not None:
        chat.callback_answers.append(pending.answer)
        pending.answer.revision = chat.bump()
    return True


# --- chats, commands, bot settings -----------------------------------------------------


@method("getChat")
async def get_chat(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call, allow_blocked=True)
    return {
        **api.hub.chat_object(chat),
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": True,
            "limited_gifts": True,
            "unique_gifts": True,
            "premium_subscription": True,
            "gifts_from_channels": True,
        },
    }


@method("getChatMember")
async def get_chat_member(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call, allow_blocked=True)
    user_id = call.params.require_int("user_id")
    if user_id == call.world.bot_id:
        kicked = chat.id in call.world.blocked
        user = call.world.bot_user()
    else:
        if chat.type == "private" and user_id != chat.id:
            raise bad_request("user not found")
        kicked = False
        user = api.hub.profile(user_id).to_api()
    if kicked:
        return {"status": "kicked", "user": user, "until_date": 0}
    return {"status": "member", "user": user}


@method("pinChatMessage")
async def pin_chat_message(api: BotApi, call: Call) -> Any:
    chat = api.chat_for(call)
    if chat.live_message(call.params.require_int("message_id")) is None:
        raise bad_request("message to pin not found")
    return True


@method("unpinChatMessage")
async def unpin_chat_message(api: BotApi, call: Call) -> Any:
    api.chat_for(call)
    return True


@method("unpinAllChatMessages")
async def unpin_all_chat_messages(api: BotApi, call: Call) -> Any:
    api.chat_for(call)
    return True


def command_scope_key(raw: Any) -> str:
    """A canonical key for a BotCommandScope object (default scope when absent)."""
    if raw is None:
        raw = {"type": "default"}
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    if raw["type"] not in (
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    ):
        raise bad_request("wrong BotCommandScope type specified")
    return json.dumps(raw, sort_keys=True, separators=(",", ":"))


def _command_key(params: Params) -> tuple[str, str]:
    language = params.get_str("language_code") or ""
    if language and (len(language) != 2 or not language.isalpha()):
        raise bad_request("invalid language code specified")
    return command_scope_key(params.get_json("scope")), language


@method("setMyCommands")
async def set_my_commands(api: BotApi, call: Call) -> Any:
    raw = call.params.get_json("commands")
    if not isinstance(raw, list) or len(raw) > 100:
        raise bad_request("can't parse commands JSON object")
    commands: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command, description = item.get("command"), item.get("description")
        if (
            not isinstance(command, str)
            or not 1 <= len(command) <= 32
            or not all(c.islower() or c.isdigit() or c == "_" for c in command)
        ):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        commands.append({"command": command, "description": description})
    key = _command_key(call.params)
    if commands:
        call.world.commands[key] = commands
    else:
        call.world.commands.pop(key, None)
    return True


@method("getMyCommands")
async def get_my_commands(api: BotApi, call: Call) -> Any:
    return call.world.commands.get(_command_key(call.params), [])


@method("deleteMyCommands")
async def delete_my_commands(api: BotApi, call: Call) -> Any:
    call.world.commands.pop(_command_key(call.params), None)
    return True


def _bot_text_method(kind: str, field: str, limit: int) -> tuple[Handler, Handler]:
    async def setter(api: BotApi, call: Call) -> Any:
        value = call.params.get_str(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        language = call.params.get_str("language_code") or ""
        if value:
            call.world.texts[(kind, language)] = value
        else:
            call.world.texts.pop((kind, language), None)
        return True

    async def getter(api: BotApi, call: Call) -> Any:
        language = call.params.get_str("language_code") or ""
        texts = call.world.texts
        default = call.world.first_name if kind == "name" else ""
        return {field: texts.get((kind, language), texts.get((kind, ""), default))}

    return setter, getter


for _kind, _field, _limit, _name in (
    ("name", "name", 64, "Name"),
    ("description", "description", 512, "Description"),
    ("short_description", "short_description", 120, "ShortDescription"),
):
    _setter, _getter = _bot_text_method(_kind, _field, _limit)
    method(f"setMy{_name}")(_setter)
    method(f"getMy{_name}")(_getter)


@method("setChatMenuButton")
async def set_chat_menu_button(api: BotApi, call: Call) -> Any:
    chat_id = call.params.get_int("chat_id")
    button = call.params.get_json("menu_button") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
        raise bad_request("can't parse MenuButton JSON object")
    call.world.menu_buttons[chat_id] = button
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(api: BotApi, call: Call) -> Any:
    chat_id = call.params.get_int("chat_id")
    buttons = call.world.menu_buttons
    button = buttons.get(chat_id) or buttons.get(None) or {"type": "commands"}
    return {"type": "commands"} if button.get("type") == "default" else button


@method("getFile")
async def get_file(api: BotApi, call: Call) -> Any:
    file_id = call.params.get_str("file_id")
    if not file_id:
        raise bad_request("file_id is empty")
    stored = api.hub.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    return stored.file_object()
