"""Where messages leave the platform: one provider per channel behind one interface.

- email: Django's email backend (``EMAIL_URL``; the console backend by default);
- SMS and push: ``HttpProvider`` (a JSON-over-HTTPS gateway: POST to the configured URL with a
  bearer token and the message's send key as ``Idempotency-Key``, answering ``{"id": ...}``) when
  ``MESSAGING_SMS_URL`` / ``MESSAGING_PUSH_URL`` is set, else ``LoggingProvider``;
- inbox: nothing leaves: the message row is the inbox item the portal shows.

A provider sends a batch and answers, per message, a ``Sent`` or a ``Failed``; it never raises for
one message's failure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from django.conf import settings
from django.core import mail

logger = logging.getLogger("loyalty.messaging")

HTTP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Outgoing:
    send_key: str
    channel: str
    to: str
    subject: str
    text: str
    html: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sent:
    provider_id: str = ""


@dataclass(frozen=True)
class Failed:
    error: str


class Provider(Protocol):
    # True when sending a message again with the same send key sends nothing twice (the provider
    # drops the repeat, or nothing leaves): a claim whose worker died may then be sent again.
    drops_repeats: bool

    def send_many(self, messages: Sequence[Outgoing]) -> list[Sent | Failed]: ...


class LoggingProvider:
    """Writes each message to the log (development, tests, benchmarks)."""

    drops_repeats = True

    def send_many(self, messages: Sequence[Outgoing]) -> list[Sent | Failed]:
        if logger.isEnabledFor(logging.DEBUG):  # asked once per batch, not once per message
            for m in messages:
                logger.debug("message %s to %s on %s: %s", m.send_key, m.to, m.channel, m.subject)
        sent = Sent()  # frozen: one answer object serves the whole batch
        return [sent] * len(messages)


class InboxProvider:
    """The inbox is the message row itself: delivered as soon as it is claimed."""

    drops_repeats = True

    def send_many(self, messages: Sequence[Outgoing]) -> list[Sent | Failed]:
        return [Sent()] * len(messages)


class EmailProvider:
    """Django's email backend: one connection per batch, one email per message. SMTP cannot drop
    a repeat: an email claim is never sent twice."""

    drops_repeats = False

    def send_many(self, messages: Sequence[Outgoing]) -> list[Sent | Failed]:
        results: list[Sent | Failed] = []
        with mail.get_connection(fail_silently=False) as connection:
            for m in messages:
                message_id = mail.make_msgid()
                email = mail.EmailMultiAlternatives(
                    subject=m.subject,
                    body=m.text,
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    to=[m.to],
                    headers={**m.headers, "Message-ID": message_id, "X-Message-Key": m.send_key},
                    connection=connection,
                )
                if m.html:
                    email.attach_alternative(m.html, "text/html")
                try:
                    email.send()
                except Exception as exc:  # noqa: BLE001 - one email's failure is that message's failure
                    results.append(Failed(error=f"{type(exc).__name__}: {exc}"[:500]))
                else:
                    results.append(Sent(provider_id=message_id))
        return results


class HttpProvider:
    """A JSON-over-HTTPS gateway (SMS in the shape of Twilio's Messages API, or a webhook-style push
    gateway): ``POST url`` with ``Authorization: Bearer <token>`` and ``Idempotency-Key: <send key>``,
    body ``{"channel", "to", "title", "body", "idempotency_key"}``; a 2xx answer with ``{"id": ...}``
    (or ``"sid"``) is sent, anything else failed. The send key lets the gateway drop a repeat."""

    drops_repeats = True

    def __init__(self, *, url: str, token: str, timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def send_many(self, messages: Sequence[Outgoing]) -> list[Sent | Failed]:
        results: list[Sent | Failed] = []
        headers = {"Authorization": f"Bearer {self.token}", "User-Agent": "loyalty-messaging/1"}
        with httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False) as client:
            for m in messages:
                payload = {
                    "channel": m.channel,
                    "to": m.to,
                    "title": m.subject,
                    "body": m.text,
                    "idempotency_key": m.send_key,
                }
                try:
                    response = client.post(self.url, json=payload, headers={**headers, "Idempotency-Key": m.send_key})
                except httpx.HTTPError as exc:
                    results.append(Failed(error=f"{type(exc).__name__}: {exc}"[:500]))
                    continue
                if not response.is_success:
                    results.append(Failed(error=f"HTTP {response.status_code}: {response.text[:200]}"))
                    continue
                try:
                    answer = response.json()
                except ValueError:
                    answer = {}
                provider_id = str(answer.get("id") or answer.get("sid") or "") if isinstance(answer, dict) else ""
                results.append(Sent(provider_id=provider_id[:200]))
        return results


def provider_for(channel: str) -> Provider:
    if channel == "email":
        return EmailProvider()
    if channel == "inbox":
        return InboxProvider()
    url = getattr(settings, f"MESSAGING_{channel.upper()}_URL", "")
    if url:
        return HttpProvider(url=url, token=getattr(settings, f"MESSAGING_{channel.upper()}_TOKEN", ""))
    return LoggingProvider()
