"""What a staff member locked out of the admin login (or a member, of the portal login) sees (django-axes ``AXES_LOCKOUT_CALLABLE``):
a page that says when to try again, answered with 429 and ``Retry-After``."""

from __future__ import annotations

import math

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from loyalty.core import clock


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    username = get_client_username(request, credentials) or ""
    cool_off = get_cool_off(request)
    last_failure = AccessAttempt.objects.filter(username=username, ip_address=client_address(request)).aggregate(
        last=Max("attempt_time")
    )["last"]
    now = clock.now()
    retry_at = (last_failure or now) + cool_off
    seconds = max(math.ceil((retry_at - now).total_seconds()), 1)
    # the staff admin's login and the member portal's login each have their own page
    template = "axes/lockout.html" if request.path.startswith("/admin/") else "portal/lockout.html"
    response = render(
        request,
        template,
        {"username": username, "retry_at": retry_at, "minutes": math.ceil(seconds / 60), "title": "Locked out"},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def client_address(request: HttpRequest) -> str:
    """The client's address: ``REMOTE_ADDR``, or behind ``NUM_PROXIES`` proxies the address the
    nearest of them saw (X-Forwarded-For from the right: what a client sends itself is ignored)."""
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if settings.NUM_PROXIES and forwarded:
        return forwarded[-min(settings.NUM_PROXIES, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")
