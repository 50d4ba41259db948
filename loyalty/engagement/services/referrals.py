"""Writes of referrals. A friend's enrollment records the referral (``referral_referrer`` before the
member is created, ``referral_record`` after, both in the enrollment's transaction); the friend's first
qualifying purchase rewards both members once (``referral_purchase_check``, one call from the purchase
workflow under the friend's account lock); a full return of that purchase within the return window
reverses both rewards (``referral_return_check``, one call from the return workflow)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Subquery
from django.utils import timezone
from django.utils.crypto import salted_hmac

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from loyalty.core.services import model_save_audited
from loyalty.engagement.models import (
    CardFingerprint,
    Referral,
    ReferralChannel,
    ReferralSettings,
    ReferralStatus,
)
from loyalty.engagement.selectors.referrals import referral_settings_of, referrer_by_code
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Account, AccountKind, Program, Purchase, Return, TransactionKind
from loyalty.partners.services import outbox_record
from members.models import Member, MemberStatus

SETTINGS_FIELDS = (
    "program",
    "is_active",
    "min_spend",
    "within_days",
    "referrer_points",
    "referee_points",
    "monthly_cap",
)
CARD_SALT = "loyalty.engagement.card-fingerprint"


def referral_settings_save(*, settings: ReferralSettings, actor: Any, created: bool) -> ReferralSettings:
    """Marketing sets what a referral needs and gives (the admin); audited as ``referral_settings.*``."""
    settings.updated_at = clock.now()
    return model_save_audited(
        instance=settings, actor=actor, created=created, fields=SETTINGS_FIELDS, action="referral_settings"
    )


# --- guards ---------------------------------------------------------------------------------------


def email_identity(email: str | None) -> str:
    """The mailbox an address reaches: lower case, without a ``+tag``, and for Gmail without dots
    (``Ann.Lee+x@gmail.com`` and ``annlee@googlemail.com`` are one person)."""
    email = (email or "").strip().lower()
    if "@" not in email:
        return email
    local, domain = email.rsplit("@", 1)
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def _same(a: str | None, b: str | None) -> bool:
    a, b = " ".join((a or "").lower().split()), " ".join((b or "").lower().split())
    return bool(a) and a == b


def self_referral_reason(*, referrer: Member, email: str | None, last_name: str, postal_code: str) -> str:
    """Why a newcomer with this profile may not use this referrer's code ('' when they may): the same
    mailbox, or the same household (postal code and family name)."""
    if email and email_identity(email) == email_identity(referrer.email):
        return "the same email address as the member who invited"
    if _same(postal_code.replace(" ", ""), referrer.postal_code.replace(" ", "")) and _same(
        last_name, referrer.last_name
    ):
        return "the same household (postal code and name) as the member who invited"
    return ""


def card_fingerprint_digest(fingerprint: str) -> str:
    """The keyed hash stored for a payment card's fingerprint (the fingerprint itself is never stored)."""
    return salted_hmac(CARD_SALT, fingerprint.strip(), algorithm="sha256").hexdigest()


# --- enrollment -----------------------------------------------------------------------------------


def referral_referrer(*, code: str, profile: dict[str, Any]) -> Member:
    """The member whose code a newcomer gave, checked before the newcomer is created: an unknown code or
    an inactive referrer is ``referral_code_invalid``, the newcomer's own mailbox or household is
    ``self_referral`` (422 both, on the field ``referral_code``; nothing is enrolled)."""
    referrer = referrer_by_code(code=code)
    if referrer is None:
        raise ValidationFailed(
            "This referral code is not valid",
            code="referral_code_invalid",
            fields={"referral_code": ["Not a valid referral code."]},
        )
    reason = self_referral_reason(
        referrer=referrer,
        email=profile.get("email"),
        last_name=profile.get("last_name", ""),
        postal_code=profile.get("postal_code", ""),
    )
    if reason:
        raise ValidationFailed(
            f"A referral code cannot be used by {reason}",
            code="self_referral",
            fields={"referral_code": ["You cannot use the code of someone in your own household."]},
        )
    return referrer


def referral_record(*, referrer: Member, referee: Member, program: Program, channel: str) -> Referral:
    """The newcomer joined with the referrer's code (in the enrollment's transaction)."""
    if channel not in ReferralChannel.values:
        raise ValidationFailed(f"Unknown referral channel '{channel}'", code="invalid_referral_channel")
    return Referral.objects.create(
        program=program, referrer=referrer, referee=referee, channel=channel, joined_at=referee.enrolled_at
    )


# --- the first qualifying purchase ----------------------------------------------------------------


def _card_record(member_id: int, fingerprint: str, now: dt.datetime) -> None:
    digest = card_fingerprint_digest(fingerprint)
    if not CardFingerprint.objects.filter(member_id=member_id, digest=digest).exists():
        CardFingerprint.objects.bulk_create(
            [CardFingerprint(member_id=member_id, digest=digest, first_seen=now)], ignore_conflicts=True
        )


def _shares_a_card(referrer_id: int, referee_id: int) -> bool:
    return CardFingerprint.objects.filter(
        member_id=referrer_id,
        digest__in=Subquery(CardFingerprint.objects.filter(member_id=referee_id).values("digest")),
    ).exists()


def _month_start(now: dt.datetime) -> dt.datetime:
    """The first instant of ``now``'s calendar month in the project's time zone."""
    return timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def referral_purchase_check(
    *, locked: ledger.LockedAccount, purchase: Purchase, card_fingerprint: str = ""
) -> Referral | None:
    """Called by the purchase workflow, under the buyer's account lock, for every purchase. No
    statement unless the buyer was referred or the partner sent a card fingerprint. The referred
    member's first purchase that reaches the program's minimum spend within its days of joining
    qualifies the referral: both members get their points (the buyer's account is the one locked; the
    referrer's is locked next, as always after the newer member's), ``referral.qualified`` is written,
    once. Not rewarded, with the reason (status ``qualified``): the referrer paid with the same card,
    the referrer reached the monthly cap, or is no longer active."""
    member = locked.member
    now = clock.now()
    if card_fingerprint:
        _card_record(member.pk, card_fingerprint, now)
    if member.referred_by_id is None:
        return None
    referral = (
        Referral.objects.filter(referee_id=member.pk, status=ReferralStatus.JOINED, program=locked.program)
        .select_related("referrer", "referee")
        .first()
    )
    if referral is None:
        return None
    settings = referral_settings_of(program=locked.program)
    if settings is None or not settings.is_active:
        return None
    if not referral.joined_at <= purchase.occurred_at <= referral.joined_at + dt.timedelta(days=settings.within_days):
        return None  # before joining (a backdated purchase) or too late
    if Decimal(purchase.total) < settings.min_spend:
        return None
    referrer = referral.referrer
    referral.purchase = purchase
    referral.qualified_at = now
    note = ""
    if referrer.status != MemberStatus.ACTIVE:
        note = "the member who invited is no longer active"
    elif _shares_a_card(referrer.pk, member.pk):
        note = "paid with the card of the member who invited"
    if note:
        referral.status, referral.note = ReferralStatus.QUALIFIED, note
        referral.save(update_fields=["purchase", "qualified_at", "status", "note"])
        _qualified_event(referral, member, rewarded=False)
        return referral
    with ledger.member_account_locked(program=locked.program, member=referrer) as referrer_locked:
        if settings.monthly_cap is not None:
            # counted under the referrer's lock: concurrent friends of one referrer take turns here
            rewarded = Referral.objects.filter(
                referrer=referrer,
                status__in=[ReferralStatus.REWARDED, ReferralStatus.REVERSED],
                qualified_at__gte=_month_start(now),
            ).count()
            if rewarded >= settings.monthly_cap:
                referral.status = ReferralStatus.QUALIFIED
                referral.note = (
                    f"the member who invited reached the cap of {settings.monthly_cap} rewarded friends this month"
                )
                referral.save(update_fields=["purchase", "qualified_at", "status", "note"])
                _qualified_event(referral, member, rewarded=False)
                return referral
        friend = member.member_number
        if settings.referrer_points:
            ledger.points_credit_locked(
                locked=referrer_locked,
                points=settings.referrer_points,
                reason=f"referral: your friend {referral.referee.first_name or friend} made a first purchase",
                idempotency_key=f"referral:{referral.pk}:referrer",
                explanation=[
                    {
                        "rule": "Referral bonus",
                        "detail": "a friend you invited joined and made a first qualifying purchase",
                        "points": str(settings.referrer_points),
                    }
                ],
            )
    if settings.referee_points:
        ledger.points_credit_locked(
            locked=locked,
            points=settings.referee_points,
            reason="referral: welcome bonus for joining with a friend's code",
            idempotency_key=f"referral:{referral.pk}:referee",
            explanation=[
                {
                    "rule": "Referral welcome bonus",
                    "detail": "you joined with a friend's code and made a first qualifying purchase",
                    "points": str(settings.referee_points),
                }
            ],
        )
    referral.status = ReferralStatus.REWARDED
    referral.referrer_points = settings.referrer_points
    referral.referee_points = settings.referee_points
    referral.save(update_fields=["purchase", "qualified_at", "status", "note", "referrer_points", "referee_points"])
    _qualified_event(referral, member, rewarded=True)
    return referral


def _qualified_event(referral: Referral, referee: Member, *, rewarded: bool) -> None:
    """About the friend (``member``): a partner hears of it when it may read the friend; the referrer is
    not named (a partner that may read the friend may not read the referrer)."""
    outbox_record(
        event_type="referral.qualified",
        member=referee,
        payload={
            "referral_id": referral.pk,
            "member_number": referee.member_number,
            "purchase_id": referral.purchase_id,
            "rewarded": rewarded,
            "referrer_points": referral.referrer_points,
            "referee_points": referral.referee_points,
        },
    )


# --- a full return of the qualifying purchase -----------------------------------------------------


def bonus_take_back(member: Member, program: Program, points: int, key: str, reason: str) -> int:
    """Debit what is left of a bonus (a referral's, a challenge's): at most the available balance
    (points already spent stay spent; the caller says the shortfall in its note). Once per ``key``."""
    if not points:
        return 0
    account = Account.objects.filter(member=member, program=program, kind=AccountKind.MEMBER).first()
    if account is None:
        return 0
    with ledger.account_locked(account=account) as held:
        taken = min(points, held.account.available)
    if taken:
        ledger.points_debit(
            account=account, points=taken, reason=reason, kind=TransactionKind.ADJUST, idempotency_key=key
        )
    return taken


def referral_return_check(*, purchase: Purchase, ret: Return) -> Referral | None:
    """Called by the return workflow under the buyer's account lock. When the purchase that qualified a
    rewarded referral is now fully returned, within the program's return window, both bonuses are taken
    back (what is still available of each), the referral is ``reversed`` and ``referral.reversed`` is
    written, once. No statement unless the buyer was referred."""
    member = purchase.member
    if member.referred_by_id is None:
        return None
    referral = (
        Referral.objects.filter(purchase=purchase, status=ReferralStatus.REWARDED).select_related("referrer").first()
    )
    if referral is None:
        return None
    purchase.refresh_from_db(fields=["returned_amount", "eligible_amount"])
    if purchase.returned_amount < purchase.eligible_amount:
        return None
    program = purchase.program
    window = dt.timedelta(days=program.pending_days)
    if (ret.occurred_at or clock.now()) > purchase.occurred_at + window:
        return None
    why = "referral reversed: the qualifying purchase was returned"
    referee_taken = bonus_take_back(
        member, program, referral.referee_points, f"referral:{referral.pk}:referee:reverse", why
    )
    referrer_taken = bonus_take_back(
        referral.referrer, program, referral.referrer_points, f"referral:{referral.pk}:referrer:reverse", why
    )
    short = (referral.referee_points - referee_taken) + (referral.referrer_points - referrer_taken)
    referral.status = ReferralStatus.REVERSED
    referral.reversed_at = clock.now()
    referral.note = f"{short} points already spent were not taken back" if short else ""
    referral.save(update_fields=["status", "reversed_at", "note"])
    outbox_record(
        event_type="referral.reversed",
        member=member,
        payload={
            "referral_id": referral.pk,
            "member_number": member.member_number,
            "purchase_id": purchase.pk,
            "referee_points_reversed": referee_taken,
            "referrer_points_reversed": referrer_taken,
        },
    )
    return referral
