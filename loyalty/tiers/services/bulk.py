"""Set-based services of the tiers for bulk loaders: what ``tier_status_ensure`` writes for fresh
members and what ``tier_upgrade_check`` records when a member reaches a higher tier, for many
members at once, so a loader never writes tier tables itself."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from loyalty.core.errors import ValidationFailed
from loyalty.core.rows import rows_update
from loyalty.ledger.models import Program
from loyalty.partners.services import NewEvent, outbox_record_many
from loyalty.tiers import qualification
from loyalty.tiers.models import ChangeReason, MemberTier, QualificationWindow, TierChange
from loyalty.tiers.selectors import ProgramTiers, program_tiers
from members.models import Member


def tier_statuses_open_many(*, program: Program, members: Sequence[Member]) -> dict[int, MemberTier]:
    """The members' status rows in ``program`` (member id -> status; empty without tiers). Where
    missing, created as ``tier_status_ensure`` creates one at the member's enrollment: at the base
    tier since then, its review period from then, with the initial history row."""
    pt = program_tiers(program=program)
    if not pt.rules or not members:
        return {}
    base = qualification.base_tier(pt.rules)
    with transaction.atomic():
        found = {s.member_id: s for s in MemberTier.objects.filter(program=program, member__in=[m.pk for m in members])}
        fresh = []
        for member in members:
            if member.pk in found:
                continue
            start, end = qualification.review_period(pt.policy.window, member.enrolled_at, member.enrolled_at)
            fresh.append(
                MemberTier(
                    member=member,
                    program=program,
                    tier_id=base.id if base else None,
                    earned_tier_id=base.id if base else None,
                    tier_since=member.enrolled_at,
                    period_start=start,
                    period_end=end,
                )
            )
        MemberTier.objects.bulk_create(fresh, batch_size=1000)
        if base is not None:
            TierChange.objects.bulk_create(
                [
                    TierChange(
                        status=s,
                        member_id=s.member_id,
                        program_id=program.pk,
                        from_tier_id=None,
                        to_tier_id=base.id,
                        reason=ChangeReason.INITIAL,
                        note="",
                        changed_at=s.tier_since,
                    )
                    for s in fresh
                ],
                batch_size=1000,
            )
    found.update({s.member_id: s for s in fresh})
    return found


@dataclass(frozen=True)
class TierUpgrade:
    """``member`` reached ``tier_id`` at ``at`` (the rule engine decided: ``loyalty.tiers.qualification``)."""

    member: Member
    tier_id: int
    at: dt.datetime


def _upgraded_payload(pt: ProgramTiers, status: MemberTier, to_id: int, at: dt.datetime) -> dict:
    old, new = pt.tier(status.tier_id), pt.tier(to_id)
    return {
        "program_id": pt.program.pk,
        "member_id": status.member_id,
        "from_tier_id": status.tier_id,
        "from_tier": old.name if old else None,
        "from_rank": old.rank if old else None,
        "to_tier_id": to_id,
        "to_tier": new.name,
        "to_rank": new.rank,
        "reason": ChangeReason.UPGRADE,
        "changed_at": at.isoformat(),
    }


def tier_upgrades_record(*, program: Program, upgrades: Sequence[TierUpgrade]) -> int:
    """Record upgrades as ``tier_upgrade_check`` records each, for statuses whose tier follows the
    rules (no tier set by hand, no downgrade waiting): the status moves up (under a rolling window
    its review period restarts), one history row and one ``tier.upgraded`` event per upgrade. A
    member's upgrades apply in time order and must each go up (``tier_not_higher``). The statuses
    are locked in primary-key order. Returns how many upgrades were recorded."""
    pt = program_tiers(program=program)
    if not upgrades:
        return 0
    if not pt.rules:
        raise ValidationFailed("This program has no tiers", code="no_tiers")
    ordered = sorted(upgrades, key=lambda u: (u.member.pk, u.at))
    with transaction.atomic():
        statuses = {
            s.member_id: s
            for s in MemberTier.objects.select_for_update()
            .filter(program=program, member__in={u.member.pk for u in ordered})
            .order_by("pk")
        }
        changes, events, changed = [], [], {}
        for upgrade in ordered:
            status = statuses.get(upgrade.member.pk)
            if status is None or status.manual_until is not None or status.downgrade_at is not None:
                raise ValidationFailed(
                    "Upgrades in bulk need a tier status that follows the rules", code="tier_status_not_plain"
                )
            if qualification.rank_of(pt.rule(upgrade.tier_id)) <= qualification.rank_of(pt.rule(status.tier_id)):
                raise ValidationFailed("An upgrade must reach a higher tier", code="tier_not_higher")
            changes.append(
                TierChange(
                    status_id=status.pk,
                    member_id=status.member_id,
                    program_id=program.pk,
                    from_tier_id=status.tier_id,
                    to_tier_id=upgrade.tier_id,
                    reason=ChangeReason.UPGRADE,
                    note="",
                    changed_at=upgrade.at,
                )
            )
            events.append(
                NewEvent(
                    event_type="tier.upgraded",
                    member_id=status.member_id,
                    at=upgrade.at,
                    payload=_upgraded_payload(pt, status, upgrade.tier_id, upgrade.at),
                )
            )
            status.tier_id = status.earned_tier_id = upgrade.tier_id
            status.tier_since = upgrade.at
            if pt.policy.window == QualificationWindow.ROLLING_12_MONTHS:
                status.period_start, status.period_end = qualification.review_period(
                    pt.policy.window, upgrade.at, upgrade.member.enrolled_at
                )
            changed[status.pk] = status
        rows_update(
            MemberTier,
            rows=[
                (s.pk, s.tier_id, s.earned_tier_id, s.tier_since, s.period_start, s.period_end)
                for s in changed.values()
            ],
            set_fields=["tier", "earned_tier", "tier_since", "period_start", "period_end"],
        )
        TierChange.objects.bulk_create(changes, batch_size=2000)
        outbox_record_many(events=events)
    return len(changes)


__all__ = ["TierUpgrade", "tier_statuses_open_many", "tier_upgrades_record"]
