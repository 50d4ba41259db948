from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from loyalty.core import clock
from loyalty.core.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Who did something: a staff user, a label (an importer, "system"), or None for the system.
Actor: TypeAlias = "AbstractBaseUser | str | None"


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    encoder = DjangoJSONEncoder()
    return {k: v if isinstance(v, (str, int, bool, type(None))) else encoder.default(v) for k, v in value.items()}


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit row. ``actor`` is a user (or a label, or None for the system)."""
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_label=(actor.get_username() if is_user else str(actor or "system"))[:200],
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:200],
        reason=reason,
        before=_jsonable(before),
        after=_jsonable(after),
        created_at=clock.now(),
    )
