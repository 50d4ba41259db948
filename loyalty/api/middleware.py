"""Under ``/api/`` every answer is application/problem+json, also where DRF's exception handler
does not reach: unknown URLs, bodies over the size limit, unhandled errors."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse

from loyalty.api.errors import PROBLEM, problem

logger = logging.getLogger("loyalty.api")
API_PREFIX = "/api/"
_FALLBACK = {
    400: ("bad_request", "Bad request", "The request was refused"),
    403: ("permission_denied", "Forbidden", "The request was refused"),
    404: ("not_found", "Not found", "No such API endpoint"),
    405: ("method_not_allowed", "Method not allowed", "This endpoint does not take this method"),
    413: ("request_too_large", "Request too large", "Request body too large"),
    500: ("server_error", "Server error", "The server failed to handle the request"),
}


def _problem_response(status_code: int, code: str, title: str, detail: str) -> HttpResponse:
    body = problem(status_code=status_code, code=code, title=title, detail=detail)
    return HttpResponse(json.dumps(body), status=status_code, content_type=PROBLEM)


def _too_large() -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _problem_response(413, "request_too_large", "Request too large", f"Request body over {limit} bytes")


class ApiProblemMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return _too_large()  # refused before a byte of the body is read
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(PROBLEM):
            # an answer Django made itself (unknown URL, an error page of a handler): the same
            # status, as a problem; its HTML is not for partners
            code, title, detail = _FALLBACK.get(
                response.status_code, _FALLBACK[500 if response.status_code >= 500 else 400]
            )
            return _problem_response(response.status_code, code, title, detail)
        return response

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        if isinstance(exception, SuspiciousOperation):
            return _problem_response(400, "bad_request", "Bad request", "The request was refused")
        logger.error("Unhandled error under /api/", exc_info=exception)
        return _problem_response(500, "server_error", "Server error", "The server failed to handle the request")
