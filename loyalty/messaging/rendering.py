"""One content, every channel: the content's subject and body are rendered once with the member's
variables, then placed into each channel's template (templates/messaging/<channel>.*), so the
wording and the offer are the same everywhere.

Variables are plain strings and numbers (never model instances), so a content's template language
can reach nothing but them. Subject and body are rendered without HTML escaping (they are text);
the HTML email escapes them where it places them."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from django.template import engines
from django.template.loader import get_template

from loyalty.messaging import tracking
from loyalty.messaging.models import Channel, Content, Purpose

VARIABLES = (
    "first_name",
    "last_name",
    "member_number",
    "points",
    "balance",
    "tier",
    "offer",
    "reward",
    "coupon_code",
    "expires_on",
    "program",
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str  # the body as the channel shows it (email text part, SMS, push, inbox)
    html: str = ""  # email only
    links: list[str] = field(default_factory=list)  # the URLs the message was rendered with
    headers: dict[str, str] = field(default_factory=dict)  # email only


@functools.lru_cache(maxsize=512)
def _compiled(source: str):
    return engines["django"].from_string("{% autoescape off %}" + source + "{% endautoescape %}")


@functools.lru_cache(maxsize=16)
def _channel_template(name: str):
    return get_template(name)


def render_to_string(name: str, context: dict[str, Any]) -> str:
    return _channel_template(name).render(context)


def render_text(source: str, variables: dict[str, Any]) -> str:
    return _compiled(source).render(variables).strip()


def content_variables(
    *, content: Content, member: dict[str, Any], balance: int | None, context: dict[str, Any]
) -> dict[str, Any]:
    """The variables of one message: the member's, the balance, what the content promotes, then
    what the trigger carried (``context``: points earned, tier, coupon code, ...)."""
    values: dict[str, Any] = {
        "first_name": member.get("first_name") or "",
        "last_name": member.get("last_name") or "",
        "member_number": member.get("member_number") or "",
        "balance": balance if balance is not None else "",
        "points": balance if balance is not None else "",
        "offer": content.offer.name if content.offer_id else "",
        "reward": content.reward.name if content.reward_id else "",
        "tier": "",
        "coupon_code": "",
        "expires_on": "",
        "program": "",
    }
    values.update({k: v for k, v in context.items() if k in VARIABLES and v is not None})
    return values


def render_message(
    *,
    content: Content,
    variables: dict[str, Any],
    channel: str,
    message_id: int | None = None,
) -> Rendered:
    """Render ``content`` for one channel. With ``message_id`` the links are tracked (click
    redirects, open pixel, unsubscribe); without (admin preview) they are shown as they are."""
    subject = render_text(content.subject, variables)
    body = render_text(content.body, variables)
    links = [content.link_url] if content.link_url else []
    marketing = content.purpose == Purpose.MARKETING

    def link(index: int) -> str:
        return tracking.click_url(message_id, index) if message_id is not None else links[index]

    email = channel == Channel.EMAIL
    tracked = message_id is not None
    page = {
        "subject": subject,
        "body": body,
        "link_url": link(0) if links else "",
        "link_text": content.link_text or "More",
        "offer": variables.get("offer", ""),
        "reward": variables.get("reward", ""),
        "marketing": marketing,
        # only email carries an unsubscribe link and an open pixel (SMS: STOP; push and inbox: the app)
        "unsubscribe_url": tracking.unsubscribe_url(message_id) if (email and marketing and tracked) else "",
        "open_url": tracking.open_url(message_id) if (email and tracked) else "",
    }
    if channel == Channel.EMAIL:
        headers = {}
        if page["unsubscribe_url"]:
            # RFC 8058 one-click unsubscribe (and RFC 2369 List-Unsubscribe)
            headers = {
                "List-Unsubscribe": f"<{page['unsubscribe_url']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
        return Rendered(
            subject=subject,
            text=render_to_string("messaging/email.txt", page).strip(),
            html=render_to_string("messaging/email.html", page),
            links=links,
            headers=headers,
        )
    template = {Channel.SMS: "messaging/sms.txt", Channel.PUSH: "messaging/push.txt"}.get(channel)
    text = render_to_string(template, page).strip() if template else body
    return Rendered(subject=subject, text=text, links=links)
