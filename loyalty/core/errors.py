"""One error hierarchy for the whole platform.

Every business rule that refuses an action raises an ``ApplicationError`` (or a subclass)
with a stable machine-readable ``code``. The API turns it into application/problem+json
(RFC 9457) with the HTTP status of its class; pages turn it into a form error.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """Base of every business error. ``code`` is stable: partners and scripts rely on it."""

    http_status = 400
    default_code = "application_error"
    title = "Request could not be processed"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}
        self.extra = extra or {}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ValidationFailed(ApplicationError):
    """Input is well-formed but breaks a rule (bad value, unknown choice)."""

    http_status = 422
    default_code = "validation_failed"
    title = "Invalid input"


class NotFound(ApplicationError):
    http_status = 404
    default_code = "not_found"
    title = "Not found"


class Conflict(ApplicationError):
    """The action clashes with the current state (already exists, not enough points)."""

    http_status = 409
    default_code = "conflict"
    title = "Conflict with current state"


class PermissionDenied(ApplicationError):
    http_status = 403
    default_code = "permission_denied"
    title = "Not allowed"
