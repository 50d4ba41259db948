from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction

from loyalty.core import clock
from loyalty.core.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Who did something: a staff user, a label (an importer, "system"), or None for the system.
Actor: TypeAlias = "AbstractBaseUser | str | None"


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Dates, decimals, UUIDs (also inside lists) become strings, as JSON keeps them."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    target_id: str | None = None,
) -> AuditEvent:
    """Write one audit row. ``actor`` is a user (or a label, or None for the system). ``target_id``
    names the target where its primary key should not be shown (an API key's holds its hash)."""
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_label=(actor.get_username() if is_user else str(actor or "system"))[:200],
        action=action,
        target_type=target._meta.label_lower,
        target_id=target_id if target_id is not None else str(target.pk),
        target_repr=str(target)[:200],
        reason=reason,
        before=_jsonable(before),
        after=_jsonable(after),
        created_at=clock.now(),
    )


M = TypeVar("M", bound=models.Model)


def model_values(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The values of ``fields`` of ``instance`` (a foreign key by its id), for an audit row."""
    values = {}
    for name in fields:
        field = instance._meta.get_field(name)
        values[name] = getattr(instance, field.attname)
    return values


def model_save_audited(
    *,
    instance: M,
    actor: Any,
    created: bool,
    fields: Iterable[str],
    action: str,
    reason: str = "",
    verb: str | None = None,
    target_id: str | None = None,
) -> M:
    """Insert or update ``instance`` and write an audit row ``<action>.created`` / ``<action>.changed``
    (or ``<action>.<verb>``) with the ``fields`` before and after as stored, in one transaction. The
    caller names the fields an audit may show (never a secret or a key hash)."""
    fields = list(fields)
    with transaction.atomic():
        before = None
        if not created:
            stored = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
            before = model_values(stored, fields)
        instance.save()
        after = model_values(type(instance)._default_manager.get(pk=instance.pk), fields)
        if before is not None:
            changed = [f for f in fields if before[f] != after[f]]
            before, after = {f: before[f] for f in changed}, {f: after[f] for f in changed}
        audit_record(
            actor=actor,
            action=f"{action}.{verb or ('created' if created else 'changed')}",
            target=instance,
            reason=reason,
            before=before,
            after=after,
            target_id=target_id,
        )
    return instance


def model_delete_audited(
    *,
    instance: models.Model,
    actor: Any,
    fields: Iterable[str],
    action: str,
    reason: str = "",
    target_id: str | None = None,
) -> None:
    """Delete ``instance`` and write an audit row ``<action>.deleted`` with its ``fields``, in one
    transaction."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=f"{action}.deleted",
            target=instance,
            reason=reason,
            before=model_values(instance, fields),
            target_id=target_id,
        )
        instance.delete()
