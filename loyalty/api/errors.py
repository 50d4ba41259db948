"""Every API error as application/problem+json (RFC 9457) with a stable ``code``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from loyalty.api.parsers import JSONTooDeep, RequestTooLarge
from loyalty.core.constraints import EXTERNAL_ID_CONSTRAINTS, constraint_name, is_check_violation
from loyalty.core.errors import ApplicationError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://loyalty.example/problems/"

_DRF_CODES = {  # the first class that matches gives the code: subclasses first
    JSONTooDeep: "json_too_deep",
    RequestTooLarge: "request_too_large",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid_request",
}


def problem(
    *, status_code: int, code: str, title: str, detail: str, errors: dict | None = None, extra: dict | None = None
) -> dict[str, Any]:
    body = {"type": TYPE_BASE + code, "title": title, "status": status_code, "detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return body


def application_problem(exc: ApplicationError) -> tuple[int, dict[str, Any]]:
    return exc.http_status, problem(
        status_code=exc.http_status,
        code=exc.code,
        title=exc.title,
        detail=exc.message,
        errors=exc.fields or None,
        extra=exc.extra,
    )


# Check constraints a partner's input can break, with the code and words the partner gets (422);
# any other check constraint is ``constraint_violated``.
CHECK_PROBLEMS = {
    "return_amount_positive": ("return_amount_rounds_to_zero", "The returned amount rounds to 0.00"),
    "redemption_points_positive": ("invalid_points", "points must be a positive whole number"),
}


def database_problem(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """A database refusal as a problem, by what was refused: only the unique ``external_id``
    constraint of a partner's record is ``duplicate_external_id`` (409); a check constraint is 422
    with its own code; another unique constraint a 409 ``conflict``; a value out of its column's
    range (numeric overflow, too long) 422 ``value_out_of_range``. None: not a database refusal."""
    if isinstance(exc, IntegrityError):
        name = constraint_name(exc)
        if name in EXTERNAL_ID_CONSTRAINTS:
            return 409, problem(
                status_code=409,
                code="duplicate_external_id",
                title="Conflict with current state",
                detail="A different record with this external_id exists",
            )
        if is_check_violation(exc):
            code, detail = CHECK_PROBLEMS.get(
                name or "", ("constraint_violated", "The request breaks a rule of the data")
            )
            return 422, problem(
                status_code=422, code=code, title="Invalid input", detail=detail, extra={"constraint": name}
            )
        return 409, problem(
            status_code=409,
            code="conflict",
            title="Conflict with current state",
            detail="The request clashes with stored data",
            extra={"constraint": name},
        )
    if isinstance(exc, DataError):
        return 422, problem(
            status_code=422,
            code="value_out_of_range",
            title="Invalid input",
            detail="A value is out of the range that can be stored",
        )
    return None


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [str(item) for item in detail]
        return [_flatten(item) for item in detail]
    return [str(detail)]


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        status_code, body = application_problem(exc)
        return Response(body, status=status_code, content_type=PROBLEM)
    if (answer := database_problem(exc)) is not None:
        status_code, body = answer
        return Response(body, status=status_code, content_type=PROBLEM)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None) is not None:
        headers["Retry-After"] = str(int(exc.wait) + 1)
    if isinstance(exc, exceptions.ValidationError):
        body = problem(
            status_code=400,
            code=code,
            title="Invalid request",
            detail="The request has invalid fields",
            errors=_flatten(exc.detail),
        )
        return Response(body, status=status.HTTP_400_BAD_REQUEST, content_type=PROBLEM)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    title = {
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        413: "Request too large",
        429: "Too many requests",
    }.get(exc.status_code, "Request failed")
    body = problem(status_code=exc.status_code, code=code, title=title, detail=str(detail))
    return Response(body, status=exc.status_code, headers=headers, content_type=PROBLEM)
