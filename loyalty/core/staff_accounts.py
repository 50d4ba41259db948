"""Changes to staff accounts and role groups (in the admin), each with an audit row: who gave whom
which rights. Password hashes never enter the audit trail; a new password shows as "changed"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from loyalty.core.services import Actor, audit_record

USER_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "is_staff", "is_superuser")


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _user_snapshot(user) -> dict[str, Any]:
    values = {f: getattr(user, f) for f in USER_FIELDS}
    values["groups"] = sorted(user.groups.values_list("name", flat=True))
    values["user_permissions"] = _permission_names(user.user_permissions.select_related("content_type"))
    return values


def _group_snapshot(group: Group) -> dict[str, Any]:
    return {"name": group.name, "permissions": _permission_names(group.permissions.select_related("content_type"))}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = [k for k in after if before.get(k) != after[k]]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}


def staff_user_save(
    *,
    user,
    actor: Actor,
    created: bool,
    groups: Iterable[Group] | None = None,
    user_permissions: Iterable[Permission] | None = None,
    reason: str = "",
) -> Any:
    """Save a staff account with its groups and permissions (None: leave them as they are)."""
    User = get_user_model()
    with transaction.atomic():
        before: dict[str, Any] = {}
        old_password = None
        if not created:
            stored = User.objects.select_for_update().get(pk=user.pk)
            before, old_password = _user_snapshot(stored), stored.password
        user.save()
        if groups is not None:
            user.groups.set(groups)
        if user_permissions is not None:
            user.user_permissions.set(user_permissions)
        after = _user_snapshot(user)
        if not created and user.password != old_password:
            before["password"], after["password"] = "(previous)", "changed"
        if not created:
            before, after = _changes(before, after)
        audit_record(
            actor=actor,
            action="user.created" if created else "user.changed",
            target=user,
            reason=reason,
            before=None if created else before,
            after=after,
        )
    return user


def staff_user_password_set(*, user, password: str | None, actor: Actor, reason: str = "") -> Any:
    """Set (or, with None, disable) a staff account's password."""
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    return staff_user_save(user=user, actor=actor, created=False, reason=reason)


def staff_user_delete(*, user, actor: Actor, reason: str = "") -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="user.deleted", target=user, reason=reason, before=_user_snapshot(user))
        user.delete()


def staff_group_save(
    *, group: Group, actor: Actor, created: bool, permissions: Iterable[Permission] | None = None, reason: str = ""
) -> Group:
    with transaction.atomic():
        before = None if created else _group_snapshot(Group.objects.select_for_update().get(pk=group.pk))
        group.save()
        if permissions is not None:
            group.permissions.set(permissions)
        after = _group_snapshot(group)
        if before is not None:
            before, after = _changes(before, after)
        audit_record(
            actor=actor,
            action="group.created" if created else "group.changed",
            target=group,
            reason=reason,
            before=before,
            after=after,
        )
    return group


def staff_group_delete(*, group: Group, actor: Actor, reason: str = "") -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="group.deleted", target=group, reason=reason, before=_group_snapshot(group))
        group.delete()
