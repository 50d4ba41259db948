"""Reads of the ledger for screens, the API and other apps. No writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from loyalty.core import clock
from loyalty.core.config import FrozenRow, config_cached, config_cached_row
from loyalty.core.errors import NotFound
from loyalty.ledger.models import Account, AccountKind, Entry, EntryKind, Lot, Program, PurchaseLine, Redemption

if TYPE_CHECKING:
    from loyalty.partners.models import Partner
    from members.models import Member


def program_default() -> Program:
    """The default program: configuration, read once per configuration stamp; the caller's own instance."""
    program = config_cached_row("program_default", lambda: Program.objects.filter(is_default=True).first())
    if program is None:
        raise NotFound("No default program is configured", code="no_default_program")
    return program


def member_account(*, member: Member, program: Program) -> Account | None:
    return Account.objects.filter(member=member, program=program, kind=AccountKind.MEMBER).first()


def points_expiring(*, account: Account, within_days: int) -> list[dict]:
    """Points that expire within N days, per expiry date (feeds balance pages and reminders)."""
    now = clock.now()
    rows = (
        Lot.objects.filter(
            account=account, remaining__gt=0, expires_at__gt=now, expires_at__lte=now + dt.timedelta(days=within_days)
        )
        .annotate(day=TruncDate("expires_at"))
        .values("day")
        .annotate(points=Sum("remaining"))
        .order_by("day")
    )
    return [{"date": row["day"], "points": row["points"]} for row in rows]


def points_pending(*, account: Account) -> list[dict]:
    """Pending points per day they become spendable, soonest first (balance pages)."""
    rows = (
        Lot.objects.filter(account=account, is_pending=True, remaining__gt=0)
        .annotate(day=TruncDate("available_at"))
        .values("day")
        .annotate(points=Sum("remaining"))
        .order_by("day")
    )
    return [{"date": row["day"], "points": row["points"]} for row in rows]


def accounts_expiring(*, within_days: int, program: Program | None = None) -> QuerySet:
    """Per account: points expiring within N days (set-based, for reminder campaigns)."""
    now = clock.now()
    lots = Lot.objects.filter(remaining__gt=0, expires_at__gt=now, expires_at__lte=now + dt.timedelta(days=within_days))
    if program is not None:
        lots = lots.filter(account__program=program)
    return lots.values("account_id", "account__member_id").annotate(points=Sum("remaining")).order_by("account_id")


def account_entries(*, account: Account) -> QuerySet[Entry]:
    return Entry.objects.filter(account=account).select_related("transaction").order_by("-created_at", "-id")


def account_entries_sum(*, account: Account) -> int:
    return Entry.objects.filter(account=account).aggregate(s=Sum("points"))["s"] or 0


def account_lots_sum(*, account: Account) -> int:
    return Lot.objects.filter(account=account).aggregate(s=Sum("remaining"))["s"] or 0


def points_liability(*, program: Program) -> dict:
    """(available + pending) × point value over all member accounts of the program."""
    totals = Account.objects.filter(program=program, kind=AccountKind.MEMBER).aggregate(
        available=Sum("available"), pending=Sum("pending"), debt=Sum("debt")
    )
    points = (totals["available"] or 0) + (totals["pending"] or 0)
    return {
        "points": points,
        "available": totals["available"] or 0,
        "pending": totals["pending"] or 0,
        "debt": totals["debt"] or 0,
        "value": (Decimal(points) * program.point_value).quantize(Decimal("0.01")),
    }


def system_totals(
    *, program: Program, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> dict[str, int]:
    """Sum of entries per system account kind (issued is negative: points put into circulation)."""
    entries = Entry.objects.filter(account__program=program).exclude(account__kind=AccountKind.MEMBER)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return {row["account__kind"]: row["total"] for row in entries.values("account__kind").annotate(total=Sum("points"))}


def breakage_rate(*, program: Program, since: dt.datetime, until: dt.datetime) -> Decimal | None:
    """Points expired ÷ points earned in the period."""
    member_entries = Entry.objects.filter(
        account__program=program, account__kind=AccountKind.MEMBER, created_at__gte=since, created_at__lt=until
    )
    sums = member_entries.aggregate(
        earned=Sum("points", filter=Q(kind=EntryKind.EARN)), expired=Sum("points", filter=Q(kind=EntryKind.EXPIRE))
    )
    if not sums["earned"]:
        return None
    return (Decimal(-(sums["expired"] or 0)) / Decimal(sums["earned"])).quantize(Decimal("0.0001"))


def partner_funding(*, program: Program) -> QuerySet:
    """Points issued per funding partner (net of reversals)."""
    return (
        Entry.objects.filter(account__program=program, account__kind=AccountKind.ISSUED)
        .values("account__partner_id")
        .annotate(points=-Sum("points"))
        .order_by("account__partner_id")
    )


def redemption_get(*, pk: int) -> Redemption:
    try:
        return Redemption.objects.select_related("account").get(pk=pk)
    except Redemption.DoesNotExist:
        raise NotFound("No such redemption", code="redemption_not_found") from None


def purchase_counts(prefix: str = "") -> Q:
    """A purchase counts for behaviour (segments, scores) unless it was returned in full.
    ``prefix``: the path to the purchase from the queried model (e.g. ``"purchase__"``)."""
    return Q(**{f"{prefix}returned_amount": 0}) | Q(**{f"{prefix}returned_amount__lt": F(f"{prefix}eligible_amount")})


def partner_program(*, partner: Partner, name: str | None = None) -> Program:
    """The program a partner earns and burns in: the named one if it is allowed, else the one
    staff listed it in, else the default program (a new partner works right away).
    Configuration: read once per configuration stamp (``loyalty.core.config``); the caller's own
    instance."""

    def load() -> FrozenRow[Program] | tuple[str, str]:
        found = _partner_program(partner, name)
        return (found.message, found.code) if isinstance(found, NotFound) else FrozenRow.of(found)

    program = config_cached(("partner_program", partner.pk, name), load)
    if isinstance(program, tuple):
        message, code = program
        raise NotFound(message, code=code)
    return program.instance()


def _partner_program(partner: Partner, name: str | None) -> Program | NotFound:
    allowed = Program.objects.filter(partners=partner)
    if name:
        program = Program.objects.filter(name=name).first()
        if (
            program is None
            or (allowed.exists() and not allowed.filter(pk=program.pk).exists())
            or (not allowed.exists() and not program.is_default)
        ):
            return NotFound(f"Program '{name}' is not available to this partner", code="program_not_found")
        return program
    listed = Exists(Program.partners.through.objects.filter(program_id=OuterRef("pk"), partner=partner))
    program = (
        Program.objects.alias(listed=listed)
        .filter(Q(listed=True) | Q(is_default=True))
        .order_by(F("listed").desc(), "pk")
        .first()
    )  # one query: the first program listing the partner, else the default one
    if program is None:
        return NotFound("No default program is configured", code="no_default_program")
    return program


def available_points_of(*, member_ids: list[int], program_id: int) -> dict[int, int]:
    """Available points per member of ``program_id`` (one query, for messages to many members)."""
    rows = Account.objects.filter(program_id=program_id, kind=AccountKind.MEMBER, member_id__in=member_ids)
    return dict(rows.values_list("member_id", "available"))


def accounts_expiring_between(*, start: dt.datetime, end: dt.datetime, program_id: int) -> QuerySet:
    """Per member account of ``program_id``: points of lots expiring in [start, end) (set-based,
    for expiry reminders run once a day over one day's window, so each lot is announced once)."""
    lots = Lot.objects.filter(
        remaining__gt=0,
        expires_at__gte=start,
        expires_at__lt=end,
        account__program_id=program_id,
        account__kind=AccountKind.MEMBER,
    )
    return lots.values("account_id", "account__member_id").annotate(points=Sum("remaining")).order_by("account_id")


def purchase_catalogue(*, limit: int = 500) -> dict[str, list[str]]:
    """The categories and SKUs seen in purchase lines, most bought first (at most ``limit`` each):
    what staff pick from when an earning rule names categories or SKUs. Cached ten minutes (two
    group-bys over the purchase lines)."""
    from django.core.cache import cache
    from django.db.models import Count

    key = f"ledger:purchase-catalogue:{limit}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    catalogue = {
        column: [
            value
            for value, _ in PurchaseLine.objects.exclude(**{column: ""})
            .values_list(column)
            .annotate(n=Count("id"))
            .order_by("-n", column)[:limit]
        ]
        for column in ("category", "sku")
    }
    cache.set(key, catalogue, 600)
    return catalogue
