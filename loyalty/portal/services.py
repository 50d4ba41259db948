"""What a member does to their own login and data on the portal. Each function is one action in
one transaction, calling the owning apps' services and the enrollment workflow."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core import signing
from django.db import IntegrityError, transaction

from loyalty.activity.services import enrollment_record
from loyalty.core.errors import Conflict, ValidationFailed
from members.models import EnrollmentSource, Member, MemberStatus
from members.selectors import consent_state
from members.services import consent_set, member_close, member_erase, member_update

PORTAL = "portal"


EMAIL_CONFIRMATION_SALT = "loyalty.portal.email-confirmation"


def email_confirmation_token(*, user: AbstractBaseUser) -> str:
    """The signed token of the link that confirms a new member's email (valid for
    ``PASSWORD_RESET_TIMEOUT`` seconds, like a password reset link)."""
    return signing.dumps(user.pk, salt=EMAIL_CONFIRMATION_SALT)


def portal_join(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    consents: Iterable[tuple[str, str, bool]],
    **profile: Any,
) -> Member:
    """A new member with a portal login that is inactive until the email is confirmed. The member
    comes in through the one enrollment workflow, with every consent asked (ticked or not) and
    the wording version shown."""
    email = (email or "").strip().lower()
    User = get_user_model()
    with transaction.atomic():
        if User.objects.filter(username__iexact=email).exists():
            raise Conflict("A member with this email already exists", code="email_taken")
        user = User(username=email, email=email, is_active=False)
        user.set_password(password)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as exc:  # another join with this email won the race
            raise Conflict("A member with this email already exists", code="email_taken") from exc
        return enrollment_record(
            source=EnrollmentSource.PORTAL,
            email=email,
            first_name=first_name,
            last_name=last_name,
            consents=list(consents),
            consent_wording_version=settings.PORTAL_CONSENT_WORDING_VERSION,
            user=user,
            **profile,
        )


def portal_email_confirm(*, token: str) -> bool:
    """Activate the login the token was made for; False when the token is wrong or expired, or the
    login is already active (a link works once) or gone."""
    try:
        user_id = signing.loads(token, salt=EMAIL_CONFIRMATION_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.BadSignature:
        return False
    with transaction.atomic():
        activated = (
            get_user_model().objects.filter(pk=user_id, is_active=False, member__isnull=False).update(is_active=True)
        )
    return activated == 1


def portal_password_reset_done(*, user: AbstractBaseUser) -> None:
    """After a successful password reset: forget the failed sign-ins of this username from every
    address, so whoever locked it out cannot keep the member out."""
    axes_reset(username=user.get_username())


def portal_profile_update(*, member: Member, user: AbstractBaseUser, **changes: Any) -> Member:
    """Change the profile (``member_update``, audited as the member) and keep the login's email and
    username (when it was the email) in step."""
    with transaction.atomic():
        old_email = (member.email or "").lower()
        member = member_update(member=member, actor=user, reason="changed by the member in the portal", **changes)
        new_email = (member.email or "").lower()
        if new_email and new_email != old_email:
            User = get_user_model()
            if user.get_username().lower() == old_email:
                if User.objects.filter(username__iexact=new_email).exclude(pk=user.pk).exists():
                    raise Conflict("A member with this email already exists", code="email_taken")
                user.username = new_email
            user.email = member.email
            user.save(update_fields=["username", "email"])
    return member


def portal_consents_save(*, member: Member, wanted: dict[tuple[str, str], bool]) -> int:
    """Record every consent whose wanted state differs from the current one (a grant or a
    withdrawal, each with its history event and the wording version); returns how many changed."""
    if member.status == MemberStatus.ERASED:
        raise Conflict("An erased member cannot change consent", code="member_erased")
    with transaction.atomic():
        # one save at a time per member: two tabs saving the same choice record it once
        Member.objects.select_for_update().filter(pk=member.pk).first()
        current = consent_state(member=member)
        changed = 0
        for (purpose, channel), granted in wanted.items():
            if current.get((purpose, channel), False) == granted:
                continue
            consent_set(
                member=member,
                purpose=purpose,
                channel=channel,
                granted=granted,
                source=PORTAL,
                wording_version=settings.PORTAL_CONSENT_WORDING_VERSION,
            )
            changed += 1
    return changed


def _check_password(user: AbstractBaseUser, password: str) -> None:
    if not user.check_password(password or ""):
        raise ValidationFailed(
            "The password is not right", code="wrong_password", fields={"password": ["The password is not right."]}
        )


def portal_account_close(*, member: Member, user: AbstractBaseUser, password: str) -> Member:
    """The member closes their membership: status closed (audited) and the login switched off.
    Points and history are kept (staff can reactivate)."""
    _check_password(user, password)
    with transaction.atomic():
        member = member_close(member=member, actor=user, reason="closed by the member in the portal")
        user.is_active = False
        user.save(update_fields=["is_active"])
    return member


def portal_account_erase(*, member: Member, user: AbstractBaseUser, password: str) -> Member:
    """The member erases their personal data (``member_erase`` in every app, audited) and their
    login is deleted: nothing personal is left, accounting records keep the member number."""
    _check_password(user, password)
    with transaction.atomic():
        # the login (its username is the email) is deleted: the audit row names the member by number
        label = f"member {member.member_number} (portal)"
        member = member_erase(member=member, actor=label, reason="erasure asked by the member in the portal")
        user.delete()
    return member
