"""Staff-defined rules: a program's tier policy and its tiers (thresholds, benefits)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import Actor, audit_record
from loyalty.ledger.models import Program
from loyalty.tiers.models import Metric, Tier, TierPerk, TierPolicy, TierThreshold


def _validated(instance) -> None:
    try:
        instance.full_clean()
    except DjangoValidationError as exc:
        fields = {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
        if any("already exists" in m for messages in fields.values() for m in messages):
            raise Conflict(
                "A tier with this name or rank exists in the program", code="tier_exists", fields=fields
            ) from None
        raise ValidationFailed(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()), code="invalid_tier_rules", fields=fields
        ) from None


def tier_snapshot(*, tier: Tier) -> dict[str, Any]:
    """Flat plain data of a tier with its thresholds and perks, as stored (for audit rows)."""
    return {
        "name": tier.name,
        "rank": tier.rank,
        "combine": tier.combine,
        "earn_multiplier": str(tier.earn_multiplier),
        "exclusive_rewards": tier.exclusive_rewards,
        "early_access": tier.early_access,
        "thresholds": ", ".join(
            f"{metric} >= {minimum}"
            for metric, minimum in TierThreshold.objects.filter(tier=tier)
            .order_by("metric")
            .values_list("metric", "minimum")
        ),
        "perks": "; ".join(
            TierPerk.objects.filter(tier=tier).order_by("position", "id").values_list("title", flat=True)
        ),
    }


def tier_policy_set(
    *,
    program: Program,
    window: str,
    downgrade_policy: str,
    grace_days: int = 0,
    adjustments_count: bool = False,
    actor: Actor = None,
) -> TierPolicy:
    """Create or change the program's tier policy; audited. Existing periods keep their end
    dates; the next period of each member follows the new window."""
    with transaction.atomic():
        policy = TierPolicy.objects.select_for_update().filter(program=program).first() or TierPolicy(program=program)
        before = None if policy.pk is None else _policy_snapshot(policy)
        policy.window = window
        policy.downgrade_policy = downgrade_policy
        policy.grace_days = grace_days
        policy.adjustments_count = adjustments_count
        _validated(policy)
        policy.save()
        audit_record(
            actor=actor, action="tier.policy_set", target=policy, before=before, after=_policy_snapshot(policy)
        )
    return policy


def _policy_snapshot(policy: TierPolicy) -> dict[str, Any]:
    return {
        "window": policy.window,
        "downgrade_policy": policy.downgrade_policy,
        "grace_days": policy.grace_days,
        "adjustments_count": policy.adjustments_count,
    }


def _threshold(metric: str, value: Any) -> TierThreshold:
    if metric not in Metric.values:
        raise ValidationFailed(f"Unknown metric '{metric}'", code="invalid_metric")
    try:
        minimum = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{metric}: not a number", code="invalid_threshold") from None
    return TierThreshold(metric=metric, minimum=minimum)


def tier_create(
    *,
    program: Program,
    name: str,
    rank: int,
    combine: str = "any",
    thresholds: dict[str, Any] | None = None,
    perks: list[str] | None = None,
    earn_multiplier: Any = Decimal("1"),
    exclusive_rewards: bool = False,
    early_access: bool = False,
    description: str = "",
    actor: Actor = None,
) -> Tier:
    """Define a tier: entry thresholds per metric (spend, points, purchases; none = everybody
    qualifies) combined with ``any`` or ``all``, and its benefits. Audited."""
    with transaction.atomic():
        tier = Tier(
            program=program,
            name=name,
            rank=rank,
            combine=combine,
            earn_multiplier=Decimal(str(earn_multiplier)),
            exclusive_rewards=exclusive_rewards,
            early_access=early_access,
            description=description,
        )
        _validated(tier)
        try:
            with transaction.atomic():
                tier.save()
        except IntegrityError as exc:
            raise Conflict("A tier with this name or rank exists in the program", code="tier_exists") from exc
        rows = [_threshold(metric, value) for metric, value in (thresholds or {}).items()]
        for row in rows:
            row.tier = tier
            _validated(row)
        TierThreshold.objects.bulk_create(rows)
        TierPerk.objects.bulk_create(
            [TierPerk(tier=tier, title=title, position=position) for position, title in enumerate(perks or [])]
        )
        audit_record(actor=actor, action="tier.create", target=tier, after=tier_snapshot(tier=tier))
    return tier


def tier_save(*, tier: Tier, actor: Actor = None) -> Tier:
    """Validate and save a tier's own fields (the admin saves thresholds and perks inline, then
    calls ``tier_rules_record``)."""
    _validated(tier)
    try:
        with transaction.atomic():
            tier.save()
    except IntegrityError as exc:
        raise Conflict("A tier with this name or rank exists in the program", code="tier_exists") from exc
    return tier


def tier_rules_record(*, tier: Tier, actor: Actor, before: dict[str, Any] | None) -> None:
    """Audit row for a staff change of a tier, its thresholds and perks."""
    after = tier_snapshot(tier=tier)
    if before != after:
        audit_record(
            actor=actor, action="tier.change" if before else "tier.create", target=tier, before=before, after=after
        )
