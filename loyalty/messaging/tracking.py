"""Signed tokens of the public tracking URLs: open pixel, click redirect, unsubscribe.

A token names the message (and, for a click, the index of the link in the URLs the message was
rendered with), signed with ``SECRET_KEY`` and a salt per use, so a token of one kind cannot be
used as another, and nobody can make one for a message they did not receive."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core import signing
from django.urls import reverse

from loyalty.core.errors import NotFound

_SALTS = {"open": "messaging.open", "click": "messaging.click", "unsubscribe": "messaging.unsubscribe"}


def token_make(kind: str, message_id: int, link: int | None = None) -> str:
    value = [message_id] if link is None else [message_id, link]
    return signing.Signer(salt=_SALTS[kind]).sign_object(value)


def token_read(kind: str, token: str) -> tuple[int, int | None]:
    """(message id, link index or None); ``NotFound`` (code ``invalid_token``) when tampered."""
    try:
        value = signing.Signer(salt=_SALTS[kind]).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        raise NotFound("This link is not valid", code="invalid_token") from None
    if not isinstance(value, list) or not value or not all(isinstance(v, int) for v in value):
        raise NotFound("This link is not valid", code="invalid_token")
    return value[0], (value[1] if len(value) > 1 else None)


def absolute(path: str) -> str:
    return settings.MESSAGING_BASE_URL.rstrip("/") + path


@functools.lru_cache(maxsize=8)
def _around_token(name: str) -> tuple[str, str]:
    """The absolute URL of ``name`` split around its token (reversed once per process)."""
    before, after = absolute(reverse(name, args=["TOKEN"])).split("TOKEN")
    return before, after


def _url(name: str, token: str) -> str:
    before, after = _around_token(name)
    return f"{before}{token}{after}"


def open_url(message_id: int) -> str:
    return _url("messaging:open", token_make("open", message_id))


def click_url(message_id: int, link: int) -> str:
    return _url("messaging:click", token_make("click", message_id, link))


def unsubscribe_url(message_id: int) -> str:
    return _url("messaging:unsubscribe", token_make("unsubscribe", message_id))
