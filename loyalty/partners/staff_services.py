"""Changes staff make to partners, their API keys and webhook endpoints (in the admin): each one
saved in a transaction with an audit row (loyalty.core.services.audit_record) saying who changed
what, from what to what. Secrets and key hashes never enter the audit trail (an API key is named by
its prefix: its primary key holds the hash)."""

from __future__ import annotations

from django.db import transaction

from loyalty.core import clock
from loyalty.core.services import Actor, audit_record, model_delete_audited, model_save_audited, model_values
from loyalty.partners.models import Partner, PartnerAPIKey, WebhookEndpoint
from loyalty.partners.services import webhook_endpoint_create

PARTNER_FIELDS = ("name", "kind", "status", "earn_multiplier", "cost_per_point")
API_KEY_FIELDS = ("partner", "name", "prefix", "scopes", "expiry_date", "revoked")
WEBHOOK_FIELDS = ("partner", "url", "event_types", "is_active", "disabled_reason", "deleted_at")


def partner_save(*, partner: Partner, actor: Actor, created: bool, reason: str = "") -> Partner:
    return model_save_audited(
        instance=partner, actor=actor, created=created, fields=PARTNER_FIELDS, action="partner", reason=reason
    )


def partner_delete(*, partner: Partner, actor: Actor, reason: str = "") -> None:
    model_delete_audited(instance=partner, actor=actor, fields=PARTNER_FIELDS, action="partner", reason=reason)


def partner_api_key_issue(*, key: PartnerAPIKey, actor: Actor, reason: str = "") -> tuple[PartnerAPIKey, str]:
    """Give ``key`` (unsaved: partner, name, scopes, expiry) a new secret and save it; returns the key
    and the raw secret, shown once."""
    with transaction.atomic():
        raw = PartnerAPIKey.objects.assign_key(key)
        model_save_audited(
            instance=key,
            actor=actor,
            created=True,
            fields=API_KEY_FIELDS,
            action="api_key",
            reason=reason,
            target_id=key.prefix,
        )
    return key, raw


def partner_api_key_save(*, key: PartnerAPIKey, actor: Actor, reason: str = "") -> PartnerAPIKey:
    """Save a change of an existing key (name, scopes, expiry, revocation)."""
    return model_save_audited(
        instance=key,
        actor=actor,
        created=False,
        fields=API_KEY_FIELDS,
        action="api_key",
        reason=reason,
        target_id=key.prefix,
    )


def partner_api_key_delete(*, key: PartnerAPIKey, actor: Actor, reason: str = "") -> None:
    model_delete_audited(
        instance=key, actor=actor, fields=API_KEY_FIELDS, action="api_key", reason=reason, target_id=key.prefix
    )


def webhook_endpoint_register(
    *, partner: Partner, url: str, event_types: list[str], actor: Actor, reason: str = ""
) -> tuple[WebhookEndpoint, str]:
    """Staff register a partner's endpoint (the same checks as the partner API's registration);
    returns it with its signing secret, shown once. Audited without the secret."""
    with transaction.atomic():
        endpoint, secret = webhook_endpoint_create(partner=partner, url=url, event_types=event_types)
        audit_record(
            actor=actor,
            action="webhook_endpoint.created",
            target=endpoint,
            reason=reason,
            after=model_values(endpoint, WEBHOOK_FIELDS),
        )
    return endpoint, secret


def webhook_endpoint_save(*, endpoint: WebhookEndpoint, actor: Actor, reason: str = "") -> WebhookEndpoint:
    """Save a staff change of an endpoint (switching it on or off); partners register endpoints."""
    if endpoint.is_active:
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
    elif not endpoint.disabled_reason:
        endpoint.disabled_reason = "disabled by staff"
    return model_save_audited(
        instance=endpoint, actor=actor, created=False, fields=WEBHOOK_FIELDS, action="webhook_endpoint", reason=reason
    )


def webhook_endpoint_remove(*, endpoint: WebhookEndpoint, actor: Actor, reason: str = "") -> WebhookEndpoint:
    """Delete an endpoint as a partner would: it stops receiving, its deliveries stay on record."""
    endpoint.is_active = False
    endpoint.deleted_at = endpoint.deleted_at or clock.now()
    endpoint.disabled_reason = "deleted by staff"
    return model_save_audited(
        instance=endpoint,
        actor=actor,
        created=False,
        fields=WEBHOOK_FIELDS,
        action="webhook_endpoint",
        reason=reason,
        verb="deleted",
    )
