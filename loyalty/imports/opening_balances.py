"""Opening balances carried over from another loyalty program, from a CSV file.

Columns (header row): ``member_number`` or ``email`` (which member), ``points`` (a whole number
> 0), optionally ``expires_on`` (YYYY-MM-DD: the lot expires at the end of that day, UTC; empty:
the program's expiry policy) and ``reason`` (default "opening balance").

Every row is checked first; if any is bad (unknown member, bad number or date, a member closed)
the errors are reported with their row numbers and nothing is written. Otherwise all rows are
credited at once by the ledger's ``points_credit_many``, as staff adjustments (kind ``adjust``:
funded by the program's adjustment account, not counted as earned in tier windows). Each row
carries an idempotency key made of the program, the member and the row's content, so running
the same file again credits nothing twice (a corrected file credits only the rows that changed).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from loyalty.core import clock
from loyalty.core.errors import ApplicationError, ValidationFailed
from loyalty.core.services import Actor, audit_record
from loyalty.ledger.models import Program, TransactionKind
from loyalty.ledger.policy import EXPIRY_TIME
from loyalty.ledger.services import Credit, accounts_open_many, points_credit_many
from members.models import Member, MemberStatus
from members.selectors import member_number_clean

DEFAULT_REASON = "opening balance"
ACTOR = "opening balance import"
RETRIES = 3


@dataclass
class OpeningBalanceReport:
    rows: int = 0
    credited: int = 0
    repeated: int = 0
    points: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, message); row 2 is the first


@dataclass(frozen=True)
class _Row:
    number: int
    member_key: tuple[str, str]  # ("number", "123...") or ("email", "ann@example.com")
    points: int
    expires_at: dt.datetime | None
    reason: str


def _parse(number: int, row: Mapping[str, str | None], today: dt.date) -> _Row:
    member_number = (row.get("member_number") or "").strip()
    email = (row.get("email") or "").strip().lower()
    if member_number:
        key = ("number", member_number_clean(member_number))
    elif email:
        key = ("email", email)
    else:
        raise ValidationFailed("member_number or email is required", code="member_required")
    text = (row.get("points") or "").strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValidationFailed(f"points '{text}' is not a whole number > 0", code="invalid_points")
    expires_text = (row.get("expires_on") or "").strip()
    expires_at = None
    if expires_text:
        try:
            expires_on = dt.date.fromisoformat(expires_text)
        except ValueError:
            raise ValidationFailed(
                f"expires_on '{expires_text}' is not a date (YYYY-MM-DD)", code="invalid_date"
            ) from None
        if expires_on < today:
            raise ValidationFailed(f"expires_on {expires_on} is in the past", code="invalid_date")
        expires_at = dt.datetime.combine(expires_on, EXPIRY_TIME, tzinfo=dt.UTC)
    reason = (row.get("reason") or "").strip()[:200] or DEFAULT_REASON
    return _Row(number=number, member_key=key, points=int(text), expires_at=expires_at, reason=reason)


def _members(rows: list[_Row]) -> dict[tuple[str, str], Member]:
    numbers = [value for kind, value in (r.member_key for r in rows) if kind == "number"]
    emails = [value for kind, value in (r.member_key for r in rows) if kind == "email"]
    found: dict[tuple[str, str], Member] = {}
    for member in Member.objects.filter(member_number__in=numbers):
        found[("number", member.member_number)] = member
    for member in Member.objects.annotate(lower=Lower("email")).filter(lower__in=emails):
        found[("email", member.email.lower())] = member
    return found


def _idempotency_key(program: Program, member: Member, row: _Row) -> str:
    content = f"{row.points}|{row.expires_at.date() if row.expires_at else ''}|{row.reason}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:24]
    return f"opening:{program.pk}:{member.member_number}:{digest}"


def opening_balances_import(
    *,
    rows: Iterable[Mapping[str, str | None]],
    program: Program,
    dry_run: bool = False,
    actor: Actor = None,
    filename: str = "",
) -> OpeningBalanceReport:
    """Check every row, then credit them all (nothing when any row is bad, or ``dry_run``).
    ``actor``: the staff user who imports (the admin page): the ledger transactions carry them
    and one ``opening_balances.imported`` audit row says what was credited."""
    report = OpeningBalanceReport()
    today = clock.today()
    parsed: list[_Row] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        report.rows += 1
        try:
            parsed.append(_parse(number, row, today))
        except ApplicationError as exc:
            report.errors.append((number, f"{exc.message} ({exc.code})"))
    members = _members(parsed)
    keys: dict[str, int] = {}
    good: list[tuple[_Row, Member, str]] = []
    for row in parsed:
        member = members.get(row.member_key)
        if member is None:
            report.errors.append(
                (row.number, f"no member with {row.member_key[0]} {row.member_key[1]} (unknown_member)")
            )
            continue
        if member.status in (MemberStatus.CLOSED, MemberStatus.ERASED):
            report.errors.append((row.number, f"member {member.member_number} is {member.status} (member_inactive)"))
            continue
        key = _idempotency_key(program, member, row)
        if key in keys:
            report.errors.append((row.number, f"same member and content as row {keys[key]} (duplicate_row)"))
            continue
        keys[key] = row.number
        good.append((row, member, key))
    report.errors.sort()
    if report.errors or dry_run or not good:
        return report
    for attempt in range(RETRIES):
        try:
            _credit(report, good, program=program, actor=actor, filename=filename)
            break
        except IntegrityError:
            # another import of the same rows committed first (its keys are taken): read again,
            # and this run finds them done (``repeated``) instead of failing
            if attempt == RETRIES - 1:
                raise
    return report


def _credit(
    report: OpeningBalanceReport, good: list[tuple[_Row, Member, str]], *, program: Program, actor: Actor, filename: str
) -> None:
    now = clock.now()
    with transaction.atomic():
        distinct = list({m.pk: m for _, m, _ in good}.values())
        accounts = accounts_open_many(program=program, members=distinct, opened_at=[now] * len(distinct))
        result = points_credit_many(
            credits=[
                Credit(
                    account=accounts[member.pk],
                    points=row.points,
                    reason=row.reason,
                    at=now,
                    kind=TransactionKind.ADJUST,
                    idempotency_key=key,
                    expires_at=row.expires_at,
                )
                for row, member, key in good
            ],
            actor=actor or ACTOR,
        )
        report.credited, report.repeated = result.credited, result.repeated
        report.points = sum(row.points for (row, _, _), tx in zip(good, result.transaction_ids, strict=True) if tx)
        if actor is not None:
            audit_record(
                actor=actor,
                action="opening_balances.imported",
                target=program,
                reason=f"opening balances {filename}".strip(),
                after={
                    "rows": report.rows,
                    "credited": report.credited,
                    "repeated": report.repeated,
                    "points": report.points,
                },
            )


def opening_balances_rows(lines: Iterable[str]) -> list[dict[str, str | None]]:
    """The rows of a CSV (header first), keys stripped; refused without the needed columns."""
    reader = csv.DictReader(lines)
    columns = {c.strip() for c in reader.fieldnames or []}
    if "points" not in columns or not columns & {"member_number", "email"}:
        raise ValidationFailed("The file needs a header with points and member_number or email", code="invalid_header")
    return [{(k or "").strip(): v for k, v in row.items()} for row in reader]


def opening_balances_import_file(*, path: Path | str, program: Program, dry_run: bool = False) -> OpeningBalanceReport:
    """``opening_balances_import`` over a CSV file (UTF-8, a header row)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = opening_balances_rows(handle)
    return opening_balances_import(rows=rows, program=program, dry_run=dry_run)
