"""Staff writes of messaging configuration (audited): contents, policies, members' preferences."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.template import TemplateSyntaxError

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.core.services import model_delete_audited, model_save_audited
from loyalty.messaging import rendering
from loyalty.messaging.models import Channel, ContactPreference, Content, MessagingPolicy, Purpose

CONTENT_FIELDS = (
    "name",
    "purpose",
    "trigger",
    "channels",
    "subject",
    "body",
    "link_url",
    "link_text",
    "offer_id",
    "reward_id",
    "banner",
    "is_active",
)
POLICY_FIELDS = (
    "time_zone",
    "quiet_start",
    "quiet_end",
    "email_weekly_cap",
    "sms_weekly_cap",
    "push_weekly_cap",
    "inbox_weekly_cap",
    "expiring_days",
)
PREFERENCE_FIELDS = (
    "time_zone",
    "quiet_start",
    "quiet_end",
    "email_enabled",
    "sms_enabled",
    "push_enabled",
    "inbox_enabled",
)


def content_validate(*, values: dict[str, Any]) -> None:
    """The rules of a content, as ``ValidationFailed`` with the field concerned: service messages
    promote no offer or reward, transactional contents are service messages, channels are known,
    subject and body are valid templates."""
    errors: dict[str, list[str]] = {}
    purpose = values.get("purpose")
    if purpose == Purpose.SERVICE:
        for name in ("offer", "reward"):
            if values.get(name) is not None or values.get(f"{name}_id") is not None:
                errors.setdefault(name, []).append("A service message carries no marketing content.")
    if values.get("trigger") and purpose != Purpose.SERVICE:
        errors.setdefault("purpose", []).append("Transactional messages are service messages.")
    channels = values.get("channels") or []
    if not isinstance(channels, list) or set(channels) - set(Channel.values):
        errors.setdefault("channels", []).append(f"Channels are a list of: {', '.join(Channel.values)}.")
    for name in ("subject", "body"):
        try:
            rendering.render_text(values.get(name) or "", {})
        except TemplateSyntaxError as exc:
            errors.setdefault(name, []).append(f"Template error: {exc}")
    if errors:
        code = "service_message_promotes" if any(k in errors for k in ("offer", "reward")) else "invalid_content"
        raise ValidationFailed("The content is not valid", code=code, fields=errors)


def content_save(*, content: Content, actor: Any, created: bool) -> Content:
    content_validate(values={f: getattr(content, f) for f in CONTENT_FIELDS} | {"offer": content.offer_id})
    now = clock.now()
    if created:
        content.created_at = now
    content.updated_at = now
    return model_save_audited(
        instance=content, actor=actor, created=created, fields=CONTENT_FIELDS, action="messaging.content"
    )


def content_delete(*, content: Content, actor: Any) -> None:
    model_delete_audited(instance=content, actor=actor, fields=CONTENT_FIELDS, action="messaging.content")


def _check_zone(name: str) -> None:
    if not name:
        return
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"Unknown time zone '{name}'", code="invalid_time_zone", fields={"time_zone": ["Unknown time zone."]}
        ) from None


def policy_save(*, policy: MessagingPolicy, actor: Any, created: bool) -> MessagingPolicy:
    _check_zone(policy.time_zone)
    policy.updated_at = clock.now()
    return model_save_audited(
        instance=policy, actor=actor, created=created, fields=POLICY_FIELDS, action="messaging.policy"
    )


def preference_set(*, member: Any, actor: Any = None, **values: Any) -> ContactPreference:
    """Set a member's contact preferences (the portal for the member, the admin for support)."""
    unknown = set(values) - set(PREFERENCE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown preference(s): {', '.join(sorted(unknown))}", code="invalid_preference")
    _check_zone(values.get("time_zone", ""))
    preference = ContactPreference.objects.filter(member=member).first()
    created = preference is None
    preference = preference or ContactPreference(member=member)
    for name, value in values.items():
        setattr(preference, name, value)
    preference.updated_at = clock.now()
    return model_save_audited(
        instance=preference, actor=actor, created=created, fields=PREFERENCE_FIELDS, action="messaging.preference"
    )
