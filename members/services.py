"""Everything that writes members and consent."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac

from loyalty.core import clock, privacy
from loyalty.core.errors import Conflict, NotFound, ValidationFailed
from loyalty.core.services import Actor, audit_record
from members import luhn
from members.models import (
    MEMBER_NUMBER_LENGTH,
    Consent,
    ConsentChannel,
    ConsentEvent,
    ConsentPurpose,
    EnrollmentSource,
    Member,
    MemberStatus,
    RedemptionCode,
)

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
PROFILE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "postal_code",
    "country",
    "preferred_language",
)
DEMOGRAPHIC_FIELDS = (
    "age_band",
    "income_band",
    "household_size",
    "household_composition",
    "kids_count",
    "home_ownership",
    "marital_status",
)
UPDATABLE_FIELDS = PROFILE_FIELDS + DEMOGRAPHIC_FIELDS + ("external_id",)


def generate_member_number() -> str:
    payload = str(secrets.randbelow(9 * 10 ** (MEMBER_NUMBER_LENGTH - 2)) + 10 ** (MEMBER_NUMBER_LENGTH - 2))
    return payload + luhn.check_digit(payload)


def generate_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


def _normalize_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip()
    if not email:
        return None
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed(
            f"'{email}' is not a valid email address", code="invalid_email", fields={"email": ["Enter a valid email."]}
        ) from None
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def _check_email_free(email: str | None, *, exclude_pk: int | None = None) -> None:
    if email is None:
        return
    taken = Member.objects.filter(email__iexact=email)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise Conflict(
            "A member with this email already exists", code="email_taken", fields={"email": ["Already in use."]}
        )


def _validate_profile(values: dict[str, Any], *, exclude_pk: int | None = None) -> None:
    birth_date = values.get("birth_date")
    if birth_date is not None:
        if not isinstance(birth_date, dt.date):
            raise ValidationFailed("birth_date must be a date", code="invalid_birth_date")
        if birth_date > clock.today() or birth_date.year < 1900:
            raise ValidationFailed(
                "birth_date must be in the past",
                code="invalid_birth_date",
                fields={"birth_date": ["Not a valid birth date."]},
            )
    country = values.get("country")
    if country and (len(country) != 2 or not country.isalpha()):
        raise ValidationFailed(
            "country must be a two-letter ISO code",
            code="invalid_country",
            fields={"country": ["Use ISO 3166-1 alpha-2."]},
        )
    for number_field in ("household_size", "kids_count"):
        value = values.get(number_field)
        if value is not None and (not isinstance(value, int) or value < 0 or value > 30):
            raise ValidationFailed(f"{number_field} must be a whole number 0-30", code=f"invalid_{number_field}")
    if values.get("external_id"):
        taken = Member.objects.filter(external_id=values["external_id"])
        if exclude_pk is not None:
            taken = taken.exclude(pk=exclude_pk)
        if taken.exists():
            raise Conflict("A member with this external id already exists", code="external_id_taken")
    if "email" in values:
        _check_email_free(values["email"], exclude_pk=exclude_pk)


def member_profile_validate(*, values: dict[str, Any], member: Member | None = None) -> dict[str, Any]:
    """Check profile values as enroll/update would; returns them normalized. Forms call it to
    show field errors before saving."""
    values = dict(values)
    if "email" in values:
        values["email"] = _normalize_email(values["email"])
    if values.get("country"):
        values["country"] = values["country"].upper()
    _validate_profile(values, exclude_pk=member.pk if member else None)
    return values


def member_enroll(
    *,
    source: str,
    email: str | None = None,
    first_name: str = "",
    last_name: str = "",
    phone: str = "",
    birth_date: dt.date | None = None,
    postal_code: str = "",
    country: str = "",
    preferred_language: str = "en",
    external_id: str | None = None,
    demographics: dict[str, Any] | None = None,
    consents: Iterable[tuple[str, str, bool]] = (),
    consent_wording_version: str = "",
    user: Any | None = None,
    referred_by: Member | None = None,
    actor: Actor = None,
) -> Member:
    """Create a member with a fresh card number and referral code, and record initial consents.

    ``consents`` is (purpose, channel, granted) triples. Opening ledger accounts is the
    enrollment workflow's job (loyalty.activity), not this service's.
    """
    if source not in EnrollmentSource.values:
        raise ValidationFailed(f"Unknown enrollment source '{source}'", code="invalid_source")
    demographics = dict(demographics or {})
    unknown = set(demographics) - set(DEMOGRAPHIC_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown demographic fields: {', '.join(sorted(unknown))}", code="invalid_demographics")
    email = _normalize_email(email)
    values = {
        "email": email,
        "first_name": first_name.strip(),
        "last_name": last_name.strip(),
        "phone": phone.strip(),
        "birth_date": birth_date,
        "postal_code": postal_code.strip(),
        "country": country.upper(),
        "preferred_language": preferred_language or "en",
        "external_id": external_id or None,
        **demographics,
    }
    _validate_profile(values)
    consents = list(consents)
    for purpose, channel, _granted in consents:
        _validate_consent_key(purpose, channel)

    with transaction.atomic():
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    member = Member.objects.create(
                        member_number=generate_member_number(),
                        referral_code=generate_referral_code(),
                        enrolled_at=clock.now(),
                        enrollment_source=source,
                        status=MemberStatus.ACTIVE,
                        user=user,
                        referred_by=referred_by,
                        **values,
                    )
                break
            except IntegrityError as exc:
                message = str(exc).lower()
                if "email" in message:
                    raise Conflict("A member with this email already exists", code="email_taken") from exc
                if "external_id" in message:
                    raise Conflict("A member with this external id already exists", code="external_id_taken") from exc
                if "member_number" not in message and "referral_code" not in message:
                    raise
        else:  # pragma: no cover - 5 random collisions in a row
            raise Conflict("Could not allocate a member number", code="number_allocation_failed")
        for purpose, channel, granted in consents:
            consent_set(
                member=member,
                purpose=purpose,
                channel=channel,
                granted=granted,
                source=source,
                wording_version=consent_wording_version,
            )
        if actor is not None:
            audit_record(actor=actor, action="member.enroll", target=member, after=_snapshot(member))
    return member


@dataclass(frozen=True)
class NewMember:
    """One member for ``member_enroll_many``: ``member_enroll``'s profile keywords (``profile``:
    email, names, phone, birth_date, postal_code, country, preferred_language), demographics and
    external id, and when the member enrolled."""

    enrolled_at: dt.datetime
    external_id: str | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)
    demographics: Mapping[str, Any] = field(default_factory=dict)


def _new_member_values(new: NewMember) -> dict[str, Any]:
    unknown = (set(new.profile) - set(PROFILE_FIELDS)) | (set(new.demographics) - set(DEMOGRAPHIC_FIELDS))
    if unknown:
        raise ValidationFailed(f"Unknown member fields: {', '.join(sorted(unknown))}", code="invalid_demographics")
    profile = dict(new.profile)
    values = {
        "email": _normalize_email(profile.get("email")),
        "first_name": str(profile.get("first_name", "")).strip(),
        "last_name": str(profile.get("last_name", "")).strip(),
        "phone": str(profile.get("phone", "")).strip(),
        "birth_date": profile.get("birth_date"),
        "postal_code": str(profile.get("postal_code", "")).strip(),
        "country": str(profile.get("country", "")).upper(),
        "preferred_language": profile.get("preferred_language") or "en",
        "external_id": new.external_id or None,
        **new.demographics,
    }
    return values


def member_enroll_many(*, source: str, members: Sequence[NewMember]) -> list[Member]:
    """Enroll many members at once, each as ``member_enroll`` would without consents or actor:
    fresh card number and referral code, active, the profile checked the same way. Emails and
    external ids must be free, also of each other (``email_taken`` / ``external_id_taken``).
    The rows are written by a few bulk INSERTs; returns the members in the given order."""
    if source not in EnrollmentSource.values:
        raise ValidationFailed(f"Unknown enrollment source '{source}'", code="invalid_source")
    rows = [_new_member_values(new) for new in members]
    for values in rows:  # the per-row rules (dates, country, numbers), without a query per row
        _validate_profile({k: v for k, v in values.items() if k not in ("email", "external_id")})
    emails = [v["email"].lower() for v in rows if v["email"]]
    if (
        len(set(emails)) != len(emails)
        or Member.objects.annotate(lower=Lower("email")).filter(lower__in=emails).exists()
    ):
        raise Conflict("A member with this email already exists", code="email_taken", fields={"email": ["In use."]})
    external = [v["external_id"] for v in rows if v["external_id"]]
    if len(set(external)) != len(external) or Member.objects.filter(external_id__in=external).exists():
        raise Conflict("A member with this external id already exists", code="external_id_taken")
    for _attempt in range(5):
        try:
            with transaction.atomic():
                created = Member.objects.bulk_create(
                    [
                        Member(
                            member_number=generate_member_number(),
                            referral_code=generate_referral_code(),
                            enrolled_at=new.enrolled_at,
                            enrollment_source=source,
                            status=MemberStatus.ACTIVE,
                            **values,
                        )
                        for new, values in zip(members, rows, strict=True)
                    ],
                    batch_size=1000,
                )
            return created
        except IntegrityError as exc:  # a card number or referral code drawn twice: draw again
            message = str(exc).lower()
            if "member_number" not in message and "referral_code" not in message:
                raise
    raise Conflict("Could not allocate member numbers", code="number_allocation_failed")  # pragma: no cover


def _snapshot(member: Member) -> dict[str, Any]:
    return {field: getattr(member, field) for field in UPDATABLE_FIELDS + ("status",)}


def member_update(*, member: Member, actor: Actor = None, reason: str = "", **changes: Any) -> Member:
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Fields cannot be changed: {', '.join(sorted(unknown))}", code="field_not_updatable")
    if member.status == MemberStatus.ERASED:
        raise Conflict("An erased member cannot be changed", code="member_erased")
    external_id = changes.pop("external_id", member.external_id)
    to_validate = dict(changes)
    if external_id != member.external_id:
        to_validate["external_id"] = external_id
    changes = member_profile_validate(values=to_validate, member=member)
    changes.pop("external_id", None)
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        before = _snapshot(member)
        for field, value in changes.items():
            setattr(member, field, value)
        member.external_id = external_id or None
        try:
            member.save()
        except IntegrityError as exc:
            raise Conflict("Email or external id already in use", code="email_taken") from exc
        after = _snapshot(member)
        changed = {k for k in after if after[k] != before[k]}
        if changed:
            audit_record(
                actor=actor,
                action="member.update",
                target=member,
                reason=reason,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
    return member


_TRANSITIONS = {
    MemberStatus.SUSPENDED: {MemberStatus.ACTIVE},
    MemberStatus.ACTIVE: {MemberStatus.SUSPENDED},
    MemberStatus.CLOSED: {MemberStatus.ACTIVE, MemberStatus.SUSPENDED},
}


def _change_status(*, member: Member, status: str, actor: Actor, reason: str, action: str) -> Member:
    if not reason or not reason.strip():
        raise ValidationFailed("A reason is required", code="reason_required", fields={"reason": ["Required."]})
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.status not in _TRANSITIONS[status]:
            raise Conflict(
                f"A {member.status} member cannot become {status}",
                code="invalid_status_transition",
                extra={"from": member.status, "to": status},
            )
        before = member.status
        member.status = status
        member.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action=action,
            target=member,
            reason=reason,
            before={"status": before},
            after={"status": status},
        )
    return member


def member_suspend(*, member: Member, actor: Actor, reason: str) -> Member:
    return _change_status(
        member=member, status=MemberStatus.SUSPENDED, actor=actor, reason=reason, action="member.suspend"
    )


def member_reactivate(*, member: Member, actor: Actor, reason: str) -> Member:
    return _change_status(
        member=member, status=MemberStatus.ACTIVE, actor=actor, reason=reason, action="member.reactivate"
    )


def member_close(*, member: Member, actor: Actor, reason: str) -> Member:
    return _change_status(member=member, status=MemberStatus.CLOSED, actor=actor, reason=reason, action="member.close")


def _validate_consent_key(purpose: str, channel: str) -> None:
    if purpose not in ConsentPurpose.values:
        raise ValidationFailed(f"Unknown consent purpose '{purpose}'", code="invalid_consent_purpose")
    if channel not in ConsentChannel.values:
        raise ValidationFailed(f"Unknown consent channel '{channel}'", code="invalid_consent_channel")


def consent_set(
    *,
    member: Member,
    purpose: str,
    channel: str = "",
    granted: bool,
    source: str,
    wording_version: str = "",
) -> ConsentEvent:
    """Grant or withdraw one consent: appends a history event and updates the current state."""
    _validate_consent_key(purpose, channel)
    if member.status == MemberStatus.ERASED and granted:
        raise Conflict("An erased member cannot grant consent", code="member_erased")
    now = clock.now()
    with transaction.atomic():
        event = ConsentEvent.objects.create(
            member=member,
            purpose=purpose,
            channel=channel,
            granted=granted,
            source=source,
            wording_version=wording_version,
            occurred_at=now,
        )
        Consent.objects.update_or_create(
            member=member, purpose=purpose, channel=channel, defaults={"granted": granted, "updated_at": now}
        )
    return event


def member_export(*, member: Member) -> dict[str, Any]:
    """One JSON-ready document of everything the platform holds on the member."""
    document: dict[str, Any] = {"exported_at": clock.now().isoformat(), "member_number": member.member_number}
    for handler in privacy.handlers():
        document[handler.section] = handler.exporter(member)
    return document


def member_erase(*, member: Member, actor: Actor, reason: str) -> Member:
    """Remove or pseudonymize personal data in every app; keep accounting records; audited."""
    if not reason or not reason.strip():
        raise ValidationFailed("A reason is required", code="reason_required", fields={"reason": ["Required."]})
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.status == MemberStatus.ERASED:
            raise Conflict("Member is already erased", code="member_erased")
        before_status = member.status
        for handler in privacy.handlers():
            handler.eraser(member)
        member.refresh_from_db()
        audit_record(
            actor=actor,
            action="member.erase",
            target=member,
            reason=reason,
            before={"status": before_status},
            after={"status": member.status},
        )
    return member


def member_link_user(*, member: Member, user: Any) -> Member:
    """Link a portal login to a member (one login per member)."""
    with transaction.atomic():
        member = Member.objects.select_for_update().get(pk=member.pk)
        if member.user_id is not None and member.user_id != user.pk:
            raise Conflict("This member already has a portal login", code="member_has_login")
        if Member.objects.filter(user=user).exclude(pk=member.pk).exists():
            raise Conflict("This login belongs to another member", code="login_taken")
        member.user = user
        member.save(update_fields=["user", "updated_at"])
    return member


REDEMPTION_CODE_LENGTH = 10  # from REFERRAL_ALPHABET: 32**10 = 2**50 codes


def _redemption_code_hash(code: str) -> str:
    """Keyed hash (HMAC-SHA256 with SECRET_KEY) of the code as the member may type it (case,
    spaces and dashes ignored): a copy of the table alone does not give the codes back."""
    normalized = "".join(code.split()).replace("-", "").upper()
    return salted_hmac("members.RedemptionCode", normalized, algorithm="sha256").hexdigest()


def redemption_code_issue(*, member: Member) -> str:
    """A fresh one-time code that lets one partner burn this member's points once, within
    ``REDEMPTION_CODE_TTL_SECONDS``; returned in plain text this once (the portal shows it), stored
    only hashed."""
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(f"A {member.status} member cannot redeem points", code="member_inactive")
    now = clock.now()
    code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REDEMPTION_CODE_LENGTH))
    RedemptionCode.objects.create(
        member=member,
        code_hash=_redemption_code_hash(code),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.REDEMPTION_CODE_TTL_SECONDS),
    )
    return code


def redemption_code_consume(*, member: Member, code: str) -> None:
    """Use up ``code`` of ``member`` in the caller's transaction (the redemption it allows), or
    raise ``redemption_code_invalid`` (unknown, another member's, expired or used). One UPDATE:
    of two transactions racing with one code, the second waits for the first and then finds it
    used, so exactly one redemption goes through."""
    now = clock.now()
    used = RedemptionCode.objects.filter(
        member=member, code_hash=_redemption_code_hash(code or ""), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if used != 1:
        raise NotFound("No valid redemption code for this member", code="redemption_code_invalid")
