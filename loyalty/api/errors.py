"""Every API error as application/problem+json (RFC 9457) with a stable ``code``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from loyalty.core.errors import ApplicationError

PROBLEM = "application/problem+json"
TYPE_BASE = "https://loyalty.example/problems/"

_DRF_CODES = {
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
    title = {401: "Not authenticated", 403: "Forbidden", 404: "Not found", 429: "Too many requests"}.get(
        exc.status_code, "Request failed"
    )
    body = problem(status_code=exc.status_code, code=code, title=title, detail=str(detail))
    return Response(body, status=exc.status_code, headers=headers, content_type=PROBLEM)
