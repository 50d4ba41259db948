"""Coupon codes: generation and issue. The validate / redeem / cancel lifecycle lives here too."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from loyalty.core import clock
from loyalty.core.constraints import constraint_name
from loyalty.core.errors import ValidationFailed
from offers.models import Coupon, CouponBatch, CouponSource, Offer, Reward

if TYPE_CHECKING:
    from loyalty.ledger.models import Program
    from members.models import Member

# No 0/O, 1/I/L: codes are read aloud and typed at tills.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH_MIN, CODE_LENGTH_MAX = 6, 32
_ISSUE_ATTEMPTS = 5


def coupon_code_generate(*, prefix: str = "", length: int = 10) -> str:
    """A random code: ``prefix`` (upper-cased) followed by ``length`` characters of ``CODE_ALPHABET``
    (31 symbols: 10 characters are about 50 bits)."""
    if not CODE_LENGTH_MIN <= length <= CODE_LENGTH_MAX:
        raise ValidationFailed(
            f"A code has {CODE_LENGTH_MIN} to {CODE_LENGTH_MAX} random characters",
            code="invalid_code_length",
            fields={"code_length": [f"Between {CODE_LENGTH_MIN} and {CODE_LENGTH_MAX}."]},
        )
    prefix = prefix.strip().upper()
    if prefix and not prefix.replace("-", "").isalnum():
        raise ValidationFailed(
            "A code prefix is letters, digits and dashes", code="invalid_code_prefix", fields={"prefix": ["Invalid."]}
        )
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def coupon_issue(
    *,
    program: Program,
    source: str,
    member: Member | None = None,
    offer: Offer | None = None,
    reward: Reward | None = None,
    batch: CouponBatch | None = None,
    max_uses: int = 1,
    valid_days: int | None = None,
    expires_at: dt.datetime | None = None,
    prefix: str = "",
    length: int = 10,
) -> Coupon:
    """Issue one coupon with a fresh random code (a collision with an existing code, vanishingly
    rare, draws again). ``valid_days`` from now, or ``expires_at``; neither: it does not expire."""
    if source not in CouponSource.values:
        raise ValueError(f"unknown coupon source {source!r}")
    now = clock.now()
    if expires_at is None and valid_days is not None:
        expires_at = now + dt.timedelta(days=valid_days)
    for _ in range(_ISSUE_ATTEMPTS):
        try:
            with transaction.atomic():
                return Coupon.objects.create(
                    code=coupon_code_generate(prefix=prefix, length=length),
                    program=program,
                    batch=batch,
                    offer=offer,
                    reward=reward,
                    member=member,
                    source=source,
                    max_uses=max_uses,
                    expires_at=expires_at,
                    issued_at=now,
                )
        except IntegrityError as exc:
            if constraint_name(exc) != "coupon_code_unique_ci":
                raise
            # the code was taken: draw another
    raise RuntimeError("could not draw a free coupon code")  # pragma: no cover - 31^10 codes
