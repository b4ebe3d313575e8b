"""Bot API errors as Telegram words them."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """A failed Bot API call: becomes `{"ok": false, "error_code": ..., ...}`."""

    def __init__(self, error_code: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def to_json(self) -> dict[str, Any]:
        """Return the error body exactly as the Bot API sends it."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(reason: str) -> BotApiError:
    """400 with Telegram's "Bad Request: " prefix."""
    return BotApiError(400, f"Bad Request: {reason}")


def forbidden(reason: str) -> BotApiError:
    """403 with Telegram's "Forbidden: " prefix."""
    return BotApiError(403, f"Forbidden: {reason}")


def conflict(reason: str) -> BotApiError:
    """409 with Telegram's "Conflict: " prefix."""
    return BotApiError(409, f"Conflict: {reason}")


def too_many_requests(retry_after: int) -> BotApiError:
    """429 carrying `parameters.retry_after`, as flood control answers."""
    return BotApiError(
        429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
    )


UNAUTHORIZED = 401
NOT_FOUND = 404

DEFAULT_DESCRIPTIONS: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def unauthorized() -> BotApiError:
    """401 for a malformed or foreign token."""
    return BotApiError(UNAUTHORIZED, "Unauthorized")


def not_found() -> BotApiError:
    """404 for an unknown method or file path."""
    return BotApiError(NOT_FOUND, "Not Found")
