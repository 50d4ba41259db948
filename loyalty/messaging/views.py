"""Public tracking URLs of messages (no login: the signed token is the authority).

- ``/m/o/<token>.gif``: open pixel (counts an open, answers a 1x1 GIF);
- ``/m/c/<token>/``: tracked click, redirects to the link the message was rendered with (the token
  names the message and the link's index; the URL itself never comes from the request);
- ``/m/u/<token>/``: unsubscribe. GET shows a page with one button (mail scanners fetch links, so a
  GET changes nothing); POST withdraws the consent, from that button or from the mail client's
  RFC 8058 one-click POST (``List-Unsubscribe=One-Click``), which carries no CSRF token.
- ``/m/status/``: delivery status callbacks of the HTTP gateway (bearer token), for bounces."""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from loyalty.core.errors import NotFound
from loyalty.messaging import services, tracking

PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _not_found() -> HttpResponse:
    return HttpResponseNotFound("This link is not valid.", content_type="text/plain; charset=utf-8")


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        message_id, _ = tracking.token_read("open", token)
    except NotFound:
        return _not_found()
    services.message_opened(message_id=message_id)
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        message_id, link = tracking.token_read("click", token)
        url = services.message_clicked(message_id=message_id, link=link if link is not None else -1)
    except NotFound:
        return _not_found()
    return HttpResponseRedirect(url)


@never_cache
@csrf_exempt  # RFC 8058: the mail client's one-click POST has no CSRF token; the signed token is the check
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        message_id, _ = tracking.token_read("unsubscribe", token)
        if request.method == "GET":
            return render(request, "messaging/unsubscribe.html", {"done": False})
        message = services.message_unsubscribe(message_id=message_id)
    except NotFound:
        return _not_found()
    return render(request, "messaging/unsubscribe.html", {"done": True, "channel": message.get_channel_display()})


@csrf_exempt
@require_POST
def provider_status(request: HttpRequest) -> HttpResponse:
    """``{"id": <provider id>, "status": "bounced", "error": "..."}`` from the SMS or push gateway,
    authenticated by its bearer token."""
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    tokens = [t for t in (settings.MESSAGING_SMS_TOKEN, settings.MESSAGING_PUSH_TOKEN) if t]
    if not supplied or not any(hmac.compare_digest(supplied, t) for t in tokens):
        return JsonResponse({"detail": "not authenticated"}, status=401)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "invalid JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        return JsonResponse({"detail": "id is required"}, status=400)
    changed = 0
    if body.get("status") in ("bounced", "undelivered", "failed"):
        changed = services.message_bounced(provider_id=body["id"], error=str(body.get("error", "")))
    return JsonResponse({"updated": changed})
