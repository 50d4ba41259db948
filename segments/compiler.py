"""Compile a validated rule tree (``segments.rules``) into one ORM query over members.

Every condition becomes a SQL predicate of the member row: a column comparison, an
``EXISTS`` (consent, tier, account, score, segment membership) or ``id IN (<grouped
subquery>)`` for behaviour in a window (purchases, lines, lots, redemptions). Nothing is
evaluated in Python per member.

``not`` is pushed down to the conditions (De Morgan), so every aggregate condition stays an
``IN`` (a semi-join) and never becomes ``NOT IN``: a negated or "empty-matching" condition
(e.g. "spend < 100", which members without purchases meet) groups the members LEFT JOINed
to their rows instead of grouping only the rows. Behaviour conditions of one group that share
their source, window and scope are merged into one grouped subquery (one scan instead of
several).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Func,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, NullIf

from loyalty.core import clock
from loyalty.core.errors import NotFound, ValidationFailed
from loyalty.ledger.models import Account, AccountKind, Lot, Purchase, PurchaseLine, Redemption, RedemptionStatus
from loyalty.ledger.selectors import purchase_counts
from members.models import Consent, Member, MemberStatus
from segments import rules as R
from segments.models import MemberScore, SegmentMembership

NOBODY = Q(pk__in=[])
EVERYBODY = Q(pk__isnull=False)
MONEY = DecimalField(max_digits=20, decimal_places=6)

MEMBER_COLUMNS = {
    "member.age_band": "age_band",
    "member.income_band": "income_band",
    "member.household_size": "household_size",
    "member.household_composition": "household_composition",
    "member.kids_count": "kids_count",
    "member.home_ownership": "home_ownership",
    "member.marital_status": "marital_status",
    "member.postal_code": "postal_code",
    "member.country": "country",
    "member.language": "preferred_language",
    "member.enrolled_at": "enrolled_at",
    "member.status": "status",
    "member.enrollment_source": "enrollment_source",
}
SCORE_COLUMNS = {
    "score.r": "r_score",
    "score.f": "f_score",
    "score.m": "m_score",
    "score.rfm_segment": "rfm_segment",
    "score.predicted_clv": "predicted_clv",
    "score.probability_alive": "probability_alive",
    "score.predicted_purchases": "predicted_purchases",
}
ACCOUNT_COLUMNS = {"loyalty.available_points": "available", "loyalty.points_earned": "earned"}
PURCHASE_METRICS = {
    "purchase.spend": "spend",
    "purchase.count": "count",
    "purchase.average_basket": "average",
    "purchase.days_since_last": "days_since_last",
}
COMPLEMENT = {
    "eq": "ne",
    "ne": "eq",
    "gt": "lte",
    "gte": "lt",
    "lt": "gte",
    "lte": "gt",
    "between": "not_between",
    "not_between": "between",
}


def matching_members(tree: dict[str, Any], *, now: dt.datetime | None = None) -> QuerySet[Member]:
    """Members (never erased ones) matching a validated rule tree: one query, unordered."""
    return Member.objects.exclude(status=MemberStatus.ERASED).filter(compile_rules(tree, now=now)).order_by()


def compile_rules(tree: dict[str, Any], *, now: dt.datetime | None = None) -> Q:
    return _Compiler(now or clock.now()).node(tree, negated=False)


# Comparisons ----------------------------------------------------------------------------------


def _number(value: Any) -> Decimal:
    return Decimal(str(value))


def _compare_q(name: str, op: str, value: Any) -> Q:
    """``name op value`` for numbers; a null ``name`` never matches (``ne`` included)."""
    if op == "between":
        return Q(**{f"{name}__gte": _number(value[0]), f"{name}__lte": _number(value[1])})
    if op == "not_between":
        return Q(**{f"{name}__lt": _number(value[0])}) | Q(**{f"{name}__gt": _number(value[1])})
    if op == "ne":
        return Q(**{f"{name}__lt": _number(value)}) | Q(**{f"{name}__gt": _number(value)})
    lookup = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}[op]
    return Q(**{f"{name}__{lookup}": _number(value)})


def _days_since_q(name: str, op: str, value: Any, now: dt.datetime) -> Q:
    """Whole days since the datetime ``name`` (floor of (now - last) / 1 day) compared, written
    as a range on ``name`` so it stays one comparison on both databases."""

    def at_least(days: int) -> Q:  # days_since >= days
        return Q(**{f"{name}__lte": now - dt.timedelta(days=days)})

    def at_most(days: int) -> Q:  # days_since <= days
        return Q(**{f"{name}__gt": now - dt.timedelta(days=days + 1)})

    if op == "between":
        return at_least(int(value[0])) & at_most(int(value[1]))
    if op == "not_between":
        return at_most(int(value[0]) - 1) | at_least(int(value[1]) + 1)
    days = int(value)
    return {
        "eq": at_least(days) & at_most(days),
        "ne": at_most(days - 1) | at_least(days + 1),
        "gt": at_least(days + 1),
        "gte": at_least(days),
        "lt": at_most(days - 1),
        "lte": at_most(days),
    }[op]


def _window_bounds(window: dict[str, Any] | None, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime]:
    """[start, end] of a window; purchases after ``now`` never count."""
    if not window:
        return None, now
    if "last_days" in window:
        return now - dt.timedelta(days=window["last_days"]), now
    start = _day_start(dt.date.fromisoformat(window["from"]))
    end = now
    if window.get("to"):
        end = min(
            now, _day_start(dt.date.fromisoformat(window["to"]) + dt.timedelta(days=1)) - dt.timedelta(microseconds=1)
        )
    return start, end


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


class Cents(Func):
    """A money column (2 decimal places) as whole cents (bigint): integer sums are exact and much
    cheaper than numeric ones over millions of purchases."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s * 100)::bigint", **extra)

    def as_sql(self, compiler, connection, **extra):
        extra.setdefault("template", "CAST(ROUND(%(expressions)s * 100) AS INTEGER)")
        return super().as_sql(compiler, connection, **extra)


# Aggregate sources ------------------------------------------------------------------------------


@dataclass
class _AggLeaf:
    key: str
    metric: str
    op: str  # already complemented when negated
    value: Any
    nullable: bool  # the complement also takes members whose value is null
    empty: Any  # the value of a member without rows: 0 or None
    condition: dict[str, Any]
    scale: int = 1  # the SQL value is the condition's value times this (spend of purchases: cents)

    def includes_empty(self) -> bool:
        if self.empty is None:
            return self.nullable
        return R.compare(self.op if self.op != "not_between" else "between", self.value, self.empty) != (
            self.op == "not_between"
        )


@dataclass
class _Source:
    """One family of rows per member (purchases, lines, lots, redemptions) filtered once."""

    kind: str
    condition: dict[str, Any]
    now: dt.datetime
    program_id: int | None = None
    relations: dict[str, FilteredRelation] = field(default_factory=dict)

    # -- rows grouped by member (only members with rows) --
    def inner_rows(self) -> tuple[QuerySet, str]:
        c, now = self.condition, self.now
        start, end = _window_bounds(c.get("window"), now)
        if self.kind == "purchase":
            rows = Purchase.objects.filter(occurred_at__lte=end).filter(purchase_counts())
            if start is not None:
                rows = rows.filter(occurred_at__gte=start)
            if c.get("partner"):
                rows = rows.filter(partner_id__in=c["partner"])
            if c.get("store"):
                rows = rows.filter(store_code__in=c["store"])
            return rows, "member_id"
        if self.kind == "line":
            rows = PurchaseLine.objects.filter(purchase__occurred_at__lte=end, returned_quantity__lt=F("quantity"))
            if start is not None:
                rows = rows.filter(purchase__occurred_at__gte=start)
            if c.get("partner"):
                rows = rows.filter(purchase__partner_id__in=c["partner"])
            if c.get("store"):
                rows = rows.filter(purchase__store_code__in=c["store"])
            if c.get("category"):
                rows = rows.filter(category__in=c["category"])
            if c.get("sku"):
                rows = rows.filter(sku__in=c["sku"])
            return rows, "purchase__member_id"
        if self.kind == "lot":
            rows = Lot.objects.filter(
                account__program_id=self.program_id,
                account__kind=AccountKind.MEMBER,
                remaining__gt=0,
                expires_at__gt=now,
                expires_at__lte=now + dt.timedelta(days=c["days"]),
            )
            return rows, "account__member_id"
        if self.kind == "redemption":
            rows = Redemption.objects.filter(
                account__program_id=self.program_id, status=RedemptionStatus.COMPLETED, created_at__lte=end
            )
            if start is not None:
                rows = rows.filter(created_at__gte=start)
            return rows, "account__member_id"
        raise AssertionError(self.kind)  # pragma: no cover

    def inner_expression(self, metric: str):
        if self.kind == "purchase":
            # two sums rather than a sum of differences: no numeric value computed per row
            net = ExpressionWrapper(Sum("eligible_amount") - Sum("returned_amount"), output_field=MONEY)
            return {
                # in cents; compared as a decimal so that a threshold like 0.295 stays 29.5 cents
                "spend": ExpressionWrapper(
                    Sum(Cents("eligible_amount")) - Sum(Cents("returned_amount")), output_field=MONEY
                ),
                "count": Count("id"),
                "average": ExpressionWrapper(net / NullIf(Count("id"), 0), output_field=MONEY),
                "last": Max("occurred_at"),
            }[metric]
        if self.kind == "line":
            net = (F("amount") - F("discount")) * (F("quantity") - F("returned_quantity")) / F("quantity")
            return {
                "spend": Sum(net, output_field=MONEY),
                "count": Count("purchase_id", distinct=True),
                "average": ExpressionWrapper(
                    Sum(net) / NullIf(Count("purchase_id", distinct=True), 0), output_field=MONEY
                ),
                "last": Max("purchase__occurred_at"),
            }[metric]
        if self.kind == "lot":
            return Sum("remaining")
        return Count("id")

    # -- every member LEFT JOINed to its rows (members without rows get the empty value) --
    def outer_relations(self) -> dict[str, FilteredRelation]:
        c, now = self.condition, self.now
        start, end = _window_bounds(c.get("window"), now)
        if self.kind in ("purchase", "line"):
            cond = Q(purchases__occurred_at__lte=end)
            if start is not None:
                cond &= Q(purchases__occurred_at__gte=start)
            if c.get("partner"):
                cond &= Q(purchases__partner_id__in=c["partner"])
            if c.get("store"):
                cond &= Q(purchases__store_code__in=c["store"])
            relations = {"_p": FilteredRelation("purchases", condition=cond)}
            if self.kind == "line":
                line_cond = Q()
                if c.get("category"):
                    line_cond &= Q(_p__lines__category__in=c["category"])
                if c.get("sku"):
                    line_cond &= Q(_p__lines__sku__in=c["sku"])
                relations["_l"] = FilteredRelation("_p__lines", condition=line_cond)
            return relations
        relations = {
            "_a": FilteredRelation(
                "accounts", condition=Q(accounts__program_id=self.program_id, accounts__kind=AccountKind.MEMBER)
            )
        }
        if self.kind == "lot":
            relations["_r"] = FilteredRelation(
                "_a__lots",
                condition=Q(
                    _a__lots__remaining__gt=0,
                    _a__lots__expires_at__gt=now,
                    _a__lots__expires_at__lte=now + dt.timedelta(days=c["days"]),
                ),
            )
        else:
            cond = Q(_a__redemptions__status=RedemptionStatus.COMPLETED, _a__redemptions__created_at__lte=end)
            if start is not None:
                cond &= Q(_a__redemptions__created_at__gte=start)
            relations["_r"] = FilteredRelation("_a__redemptions", condition=cond)
        return relations

    def outer_expression(self, metric: str):
        zero = Value(Decimal("0"), output_field=MONEY)
        if self.kind == "purchase":
            kept = purchase_counts("_p__")
            net = ExpressionWrapper(Sum("_p__eligible_amount") - Sum("_p__returned_amount"), output_field=MONEY)
            count = Count("_p__id", filter=kept)
            cents = ExpressionWrapper(
                Sum(Cents("_p__eligible_amount")) - Sum(Cents("_p__returned_amount")), output_field=MONEY
            )
            return {
                "spend": Coalesce(cents, zero),
                "count": count,
                "average": ExpressionWrapper(net / NullIf(count, 0), output_field=MONEY),
                "last": Max(Case(When(kept, then=F("_p__occurred_at")))),
            }[metric]
        if self.kind == "line":
            kept = Q(_l__returned_quantity__lt=F("_l__quantity"))
            net = (
                (F("_l__amount") - F("_l__discount"))
                * (F("_l__quantity") - F("_l__returned_quantity"))
                / F("_l__quantity")
            )
            count = Count("_l__purchase_id", distinct=True, filter=kept)
            return {
                "spend": Coalesce(Sum(net, output_field=MONEY), zero),
                "count": count,
                "average": ExpressionWrapper(Sum(net, filter=kept) / NullIf(count, 0), output_field=MONEY),
                "last": Max(Case(When(kept, then=F("_p__occurred_at")))),
            }[metric]
        if self.kind == "lot":
            return Coalesce(Sum("_r__remaining"), 0)
        return Count("_r__id")


def _metric_q(alias: str, leaf: _AggLeaf, now: dt.datetime) -> Q:
    if leaf.metric == "last":
        q = _days_since_q(alias, leaf.op, leaf.value, now)
    else:
        value = leaf.value
        if leaf.scale != 1:
            value = [_number(v) * leaf.scale for v in value] if isinstance(value, list) else _number(value) * leaf.scale
        q = _compare_q(alias, leaf.op, value)
    if leaf.nullable and leaf.empty is None:
        q |= Q(**{f"{alias}__isnull": True})
    return q


# The compiler --------------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._default_program: int | None = None
        self._tiers: dict[int, Any] = {}

    # groups -----------------------------------------------------------------------------------
    def node(self, node: dict[str, Any], *, negated: bool) -> Q:
        if "not" in node:
            return self.node(node["not"], negated=not negated)
        if "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            conjunction = (key == "all") != negated
            return self.group(node[key], conjunction=conjunction, negated=negated)
        leaf = self.aggregate_leaf(node, negated)
        if leaf is not None:
            return self.aggregate_q([leaf], conjunction=True)
        return self.leaf(node, negated=negated)

    def group(self, children: list[dict[str, Any]], *, conjunction: bool, negated: bool) -> Q:
        if not children:
            return EVERYBODY if conjunction else NOBODY
        parts: list[Q] = []
        buckets: dict[str, list[_AggLeaf]] = {}
        for child in children:
            flip, inner = negated, child
            while "not" in inner:
                flip, inner = not flip, inner["not"]
            leaf = self.aggregate_leaf(inner, flip) if "field" in inner else None
            if leaf is not None:
                buckets.setdefault(leaf.key, []).append(leaf)
            else:
                parts.append(self.node(child, negated=negated))
        for leaves in buckets.values():
            parts.append(self.aggregate_q(leaves, conjunction=conjunction))
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if conjunction else (result | part)
        return result

    # aggregates -------------------------------------------------------------------------------
    def aggregate_leaf(self, c: dict[str, Any], negated: bool) -> _AggLeaf | None:
        name = c["field"]
        if name in PURCHASE_METRICS:
            kind = "line" if (c.get("category") or c.get("sku")) else "purchase"
            metric = PURCHASE_METRICS[name]
            metric = "last" if metric == "days_since_last" else metric
            empty = 0 if metric in ("spend", "count") else None
            source = {k: c[k] for k in ("window", "partner", "store", "category", "sku") if k in c}
        elif name == "loyalty.points_expiring":
            kind, metric, empty = "lot", "sum", 0
            source = {"days": c["days"], "program": self.program_id(c)}
        elif name == "loyalty.redemptions":
            kind, metric, empty = "redemption", "count", 0
            source = {"window": c.get("window"), "program": self.program_id(c)}
        else:
            return None
        op = COMPLEMENT[c["op"]] if negated else c["op"]
        return _AggLeaf(
            key=kind + json.dumps(source, sort_keys=True),
            metric=metric,
            op=op,
            value=c["value"],
            nullable=negated,
            empty=empty,
            condition={**c, "_kind": kind, "_program": source.get("program")},
            scale=100 if (kind == "purchase" and metric == "spend") else 1,
        )

    def aggregate_q(self, leaves: list[_AggLeaf], *, conjunction: bool) -> Q:
        first = leaves[0].condition
        source = _Source(kind=first["_kind"], condition=first, now=self.now, program_id=first.get("_program"))
        flags = [leaf.includes_empty() for leaf in leaves]
        includes_empty = all(flags) if conjunction else any(flags)
        having = Q()
        if includes_empty:
            rows = Member.objects.annotate(**source.outer_relations()).values("pk")
            annotations = {f"v{i}": source.outer_expression(leaf.metric) for i, leaf in enumerate(leaves)}
            member_path = "pk"
        else:
            rows, member_path = source.inner_rows()
            rows = rows.values(member_path)
            annotations = {f"v{i}": source.inner_expression(leaf.metric) for i, leaf in enumerate(leaves)}
        for i, leaf in enumerate(leaves):
            part = _metric_q(f"v{i}", leaf, self.now)
            having = part if i == 0 else ((having & part) if conjunction else (having | part))
        subquery = rows.annotate(**annotations).filter(having).order_by().values(member_path)
        return Q(pk__in=subquery)

    # other conditions -------------------------------------------------------------------------
    def leaf(self, c: dict[str, Any], *, negated: bool) -> Q:
        name = c["field"]
        if name in MEMBER_COLUMNS or name == "member.has_kids":
            q = self.member_column(c)
        elif name == "consent":
            granted = Exists(
                Consent.objects.filter(
                    member=OuterRef("pk"), purpose=c["purpose"], channel=c.get("channel", ""), granted=True
                )
            )
            q = Q(granted) if c["value"] else ~Q(granted)
        elif name == "segment":
            inside = Exists(
                SegmentMembership.objects.filter(member=OuterRef("pk"), segment_id__in=c["value"], left_at__isnull=True)
            )
            q = Q(inside) if c["op"] == "in" else ~Q(inside)
        elif name in SCORE_COLUMNS:
            column = SCORE_COLUMNS[name]
            if name == "score.rfm_segment":
                wanted = [c["value"]] if c["op"] in ("eq", "ne") else c["value"]
                match = Q(rfm_segment__in=wanted) if c["op"] in ("eq", "in") else ~Q(rfm_segment__in=wanted)
            else:
                match = _compare_q(column, c["op"], c["value"])
            q = Q(Exists(MemberScore.objects.filter(match, member=OuterRef("pk"))))
        elif name in ACCOUNT_COLUMNS:
            q = self.account_column(c)
        elif name == "loyalty.tier":
            q = self.tier(c)
        else:  # pragma: no cover - the catalogue and the compiler list the same fields
            raise AssertionError(name)
        return ~q if negated else q

    def member_column(self, c: dict[str, Any]) -> Q:
        name, op, value = c["field"], c["op"], c["value"]
        if name == "member.has_kids":
            return Q(kids_count__gt=0) if value else Q(kids_count=0)
        column = MEMBER_COLUMNS[name]
        spec = R.fields()[name]
        if spec.type == R.DATE:
            if op == "in_last_days":
                return Q(**{f"{column}__gte": self.now - dt.timedelta(days=value)})
            if op == "more_than_days_ago":
                return Q(**{f"{column}__lt": self.now - dt.timedelta(days=value)})
            if op == "between":
                low = _day_start(dt.date.fromisoformat(value[0]))
                high = _day_start(dt.date.fromisoformat(value[1]) + dt.timedelta(days=1))
                return Q(**{f"{column}__gte": low, f"{column}__lt": high})
            day = _day_start(dt.date.fromisoformat(value))
            return Q(**{f"{column}__lt" if op == "before" else f"{column}__gte": day})
        if op == "is_set":
            filled = Q(**{f"{column}__isnull": False}) if spec.type == R.INTEGER else ~Q(**{column: ""})
            return filled if value else ~filled
        if spec.type == R.INTEGER:
            if op == "ne":
                return ~Q(**{column: value})
            return _compare_q(column, op, value)
        if op == "starts_with":
            q = NOBODY
            for prefix in value:
                q |= Q(**{f"{column}__istartswith": prefix})
            return q
        q = Q(**{column: value}) if op in ("eq", "ne") else Q(**{f"{column}__in": value})
        return ~q if op in ("ne", "not_in") else q

    def account_column(self, c: dict[str, Any]) -> Q:
        """One account row per member and program; a member without one has 0 points."""
        column = ACCOUNT_COLUMNS[c["field"]]
        accounts = Account.objects.filter(member=OuterRef("pk"), program_id=self.program_id(c), kind=AccountKind.MEMBER)
        if R.compare(c["op"], c["value"], 0):
            return ~Q(Exists(accounts.filter(_compare_q(column, COMPLEMENT[c["op"]], c["value"]))))
        return Q(Exists(accounts.filter(_compare_q(column, c["op"], c["value"]))))

    def tier(self, c: dict[str, Any]) -> Q:
        """Members whose current tier is in the wanted set; members without a tier status are at
        the program's base tier. ``ne`` / ``not_in`` are the complement of ``eq`` / ``in``."""
        from loyalty.tiers.models import MemberTier

        program_id = self.program_id(c)
        tiers, base_id = self.program_tiers(program_id)
        by_name = {t.name.lower(): t for t in tiers}
        names = c["value"] if isinstance(c["value"], list) else [c["value"]]
        unknown = [n for n in names if n.lower() not in by_name]
        if unknown:
            raise ValidationFailed(
                f"Unknown tier(s) {', '.join(unknown)} in program {program_id}", code="invalid_rules"
            )
        if c["op"] == "at_least":
            rank = by_name[names[0].lower()].rank
            wanted = {t.pk for t in tiers if t.rank >= rank}
        else:
            wanted = {by_name[n.lower()].pk for n in names}
        statuses = MemberTier.objects.filter(member=OuterRef("pk"), program_id=program_id)
        q = Q(Exists(statuses.filter(tier_id__in=wanted)))
        if base_id in wanted:
            q |= ~Q(Exists(statuses))
        return ~q if c["op"] in ("ne", "not_in") else q

    # look-ups ---------------------------------------------------------------------------------
    def program_id(self, c: dict[str, Any]) -> int:
        if c.get("program"):
            return c["program"]
        if self._default_program is None:
            from loyalty.ledger.selectors import program_default

            try:
                self._default_program = program_default().pk
            except NotFound:
                raise ValidationFailed(
                    f"{c['field']}: no program given and no default program is configured", code="invalid_rules"
                ) from None
        return self._default_program

    def program_tiers(self, program_id: int):
        if program_id not in self._tiers:
            from loyalty.ledger.models import Program
            from loyalty.tiers import qualification
            from loyalty.tiers.selectors import program_tiers

            program = Program.objects.filter(pk=program_id).first()
            if program is None:
                raise ValidationFailed(f"Unknown program {program_id}", code="invalid_rules")
            pt = program_tiers(program=program)
            base = qualification.base_tier(pt.rules)
            self._tiers[program_id] = (pt.tiers, base.id if base else None)
        return self._tiers[program_id]
