"""A member's tier: the status row, upgrades at once, tiers set by hand.

Every service locks the member's status row (``select_for_update``), first settles what is
due on it (the nightly job's statements, for this one member), then decides.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from loyalty.core import clock
from loyalty.core.errors import Conflict, ValidationFailed
from loyalty.core.services import Actor, audit_record
from loyalty.ledger.models import Program
from loyalty.partners.services import outbox_record
from loyalty.tiers import qualification
from loyalty.tiers.models import ChangeReason, MemberTier, QualificationWindow, Tier, TierChange
from loyalty.tiers.selectors import ProgramTiers, member_metrics, program_tiers
from loyalty.tiers.services.evaluation import due, evaluate_range
from members.models import Member, MemberStatus


def _event(pt: ProgramTiers, status: MemberTier, from_id: int | None, to_id: int | None, reason: str, now) -> None:
    if reason == ChangeReason.INITIAL:
        return
    old, new = pt.tier(from_id), pt.tier(to_id)
    from_rank, to_rank = (old.rank if old else qualification.NO_RANK), (new.rank if new else qualification.NO_RANK)
    if from_rank == to_rank:
        return
    outbox_record(
        event_type="tier.upgraded" if to_rank > from_rank else "tier.downgraded",
        member=status.member,
        payload={
            "program_id": pt.program.pk,
            "member_id": status.member_id,
            "from_tier_id": from_id,
            "from_tier": old.name if old else None,
            "from_rank": old.rank if old else None,
            "to_tier_id": to_id,
            "to_tier": new.name if new else None,
            "to_rank": new.rank if new else None,
            "reason": reason,
            "changed_at": now.isoformat(),
        },
    )


def _change(
    pt: ProgramTiers,
    status: MemberTier,
    to_id: int | None,
    reason: str,
    now: dt.datetime,
    *,
    note: str = "",
    actor: Actor = None,
) -> None:
    """Move the status to ``to_id`` (caller saves the row): history row and outbox event."""
    from_id = status.tier_id
    TierChange.objects.create(
        status=status,
        member_id=status.member_id,
        program_id=status.program_id,
        from_tier_id=from_id,
        to_tier_id=to_id,
        reason=reason,
        note=note,
        actor=actor if getattr(actor, "pk", None) is not None else None,
        changed_at=now,
    )
    _event(pt, status, from_id, to_id, reason, now)
    if from_id != to_id:
        status.tier_id = to_id
        status.tier_since = now


def _status_locked(*, member: Member, pt: ProgramTiers, now: dt.datetime) -> MemberTier:
    """The member's status row, locked and settled; created at the base tier if missing."""
    program = pt.program
    status = MemberTier.objects.select_for_update().filter(member=member, program=program).first()
    if status is None:
        base = qualification.base_tier(pt.rules)
        start, end = qualification.review_period(pt.policy.window, now, member.enrolled_at)
        try:
            with transaction.atomic():
                status = MemberTier.objects.create(
                    member=member,
                    program=program,
                    tier_id=None,
                    earned_tier_id=base.id if base else None,
                    tier_since=now,
                    period_start=start,
                    period_end=end,
                )
        except IntegrityError:
            status = MemberTier.objects.select_for_update().get(member=member, program=program)
        else:
            if base is not None:
                _change(pt, status, base.id, ChangeReason.INITIAL, now)
                status.save(update_fields=["tier", "tier_since"])
            return status
    if MemberTier.objects.filter(pk=status.pk).filter(due(now)).exists():
        evaluate_range(pt=pt, low=member.pk - 1, high=member.pk, now=now)
        status.refresh_from_db()
    return status


def tier_status_ensure(*, member: Member, program: Program) -> MemberTier | None:
    """The member's status row, created at the base tier (history: initial) if missing.
    None when the program has no tiers."""
    pt = program_tiers(program=program)
    if not pt.rules:
        return None
    with transaction.atomic():
        return _status_locked(member=member, pt=pt, now=clock.now())


def tier_upgrade_check(*, member: Member, program: Program, tiers: ProgramTiers | None = None) -> MemberTier | None:
    """Called by the activity workflow after each qualifying activity: if the member's metrics in
    the current window now reach a higher tier, upgrade at once (only ever up). Also cancels a
    downgrade waiting out its grace period when the member requalifies. None without tiers.
    ``tiers``: the program's tiers (``program_tiers``) when the caller read them already."""
    if tiers is not None and tiers.program_row.pk != program.pk:
        raise ValueError("tiers belong to another program")
    pt = tiers if tiers is not None else program_tiers(program=program)
    if not pt.rules:
        return None
    now = clock.now()
    policy = pt.policy
    with transaction.atomic():
        status = _status_locked(member=member, pt=pt, now=now)
        start, end = qualification.qualification_window(policy.window, now, member.enrolled_at)
        metrics = member_metrics(
            member=member, program=program, start=start, end=end, adjustments_count=policy.adjustments_count
        )
        qualified = qualification.qualified_tier(pt.rules, metrics)
        q_rank = qualification.rank_of(qualified)
        earned_rank = qualification.rank_of(pt.rule(status.earned_tier_id))
        fields: set[str] = set()
        if status.downgrade_at is not None:
            if q_rank >= earned_rank:
                status.downgrade_to_id, status.downgrade_at = None, None
                fields |= {"downgrade_to", "downgrade_at"}
            elif q_rank > qualification.rank_of(pt.rule(status.downgrade_to_id)):
                status.downgrade_to_id = qualified.id
                fields.add("downgrade_to")
        if q_rank > earned_rank:
            status.earned_tier_id = qualified.id
            fields.add("earned_tier")
            if policy.window == QualificationWindow.ROLLING_12_MONTHS:
                status.period_start, status.period_end = qualification.review_period(
                    policy.window, now, member.enrolled_at
                )
                fields |= {"period_start", "period_end"}
        manual = status.manual_until is not None
        if q_rank > qualification.rank_of(pt.rule(status.tier_id)) and (not manual or q_rank > earned_rank):
            _change(pt, status, qualified.id, ChangeReason.UPGRADE, now)
            fields |= {"tier", "tier_since"}
            if manual:  # newly earned a tier above the one set by hand: the rules take over
                status.manual_until, status.manual_reason = None, ""
                fields |= {"manual_until", "manual_reason"}
        if fields:
            status.save(update_fields=sorted(fields))
    return status


def _until(value: dt.datetime | dt.date) -> dt.datetime:
    """A date means "to the end of that day" (UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValidationFailed("until must be timezone-aware", code="invalid_until")
        return value
    return dt.datetime.combine(value + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def tier_manual_validate(
    *, member: Member, program: Program, tier: Tier, until: dt.datetime | dt.date, reason: str
) -> dt.datetime:
    """Check a tier set by hand as ``tier_manual_set`` would (forms show the errors first);
    returns when it ends."""
    if not reason or not reason.strip():
        raise ValidationFailed("A reason is required", code="reason_required", fields={"reason": ["Required."]})
    if tier.program_id != program.pk:
        raise ValidationFailed(
            "The tier belongs to another program", code="tier_program_mismatch", fields={"tier": ["Other program."]}
        )
    if member.status in (MemberStatus.CLOSED, MemberStatus.ERASED):
        raise Conflict(f"A {member.status} member cannot get a tier", code="member_inactive")
    ends = _until(until)
    if ends <= clock.now():
        raise ValidationFailed("The end date must be in the future", code="invalid_until", fields={"until": ["Past."]})
    return ends


def tier_manual_set(
    *,
    member: Member,
    program: Program,
    tier: Tier,
    until: dt.datetime | dt.date,
    reason: str,
    actor: Actor,
) -> MemberTier:
    """Staff set a tier by hand (status match) until a date; after it the normal rules apply
    again (the member falls back to the earned tier). Upgrades earned above it still apply at
    once; period closes do not lower it. Needs a reason; audited; always a history row."""
    ends = tier_manual_validate(member=member, program=program, tier=tier, until=until, reason=reason)
    now = clock.now()
    pt = program_tiers(program=program)
    with transaction.atomic():
        status = _status_locked(member=member, pt=pt, now=now)
        before = {"tier": str(pt.tier(status.tier_id) or ""), "manual_until": status.manual_until}
        _change(
            pt, status, tier.pk, ChangeReason.MANUAL, now, note=f"{reason} (until {ends:%Y-%m-%d %H:%M})", actor=actor
        )
        status.manual_until, status.manual_reason = ends, reason
        status.save(update_fields=["tier", "tier_since", "manual_until", "manual_reason"])
        audit_record(
            actor=actor,
            action="tier.manual_set",
            target=status,
            reason=reason,
            before=before,
            after={"tier": tier.name, "manual_until": ends},
        )
    return status


def tier_manual_end(*, member: Member, program: Program, reason: str, actor: Actor) -> MemberTier:
    """End a manual tier now: the member falls back to the tier the rules give. Audited."""
    if not reason or not reason.strip():
        raise ValidationFailed("A reason is required", code="reason_required", fields={"reason": ["Required."]})
    now = clock.now()
    pt = program_tiers(program=program)
    with transaction.atomic():
        status = _status_locked(member=member, pt=pt, now=now)
        if status.manual_until is None:
            raise Conflict("The member has no tier set by hand", code="no_manual_tier")
        before = {"tier": str(pt.tier(status.tier_id) or ""), "manual_until": status.manual_until}
        if status.earned_tier_id != status.tier_id:
            _change(pt, status, status.earned_tier_id, ChangeReason.MANUAL_EXPIRED, now, note=reason, actor=actor)
        status.manual_until, status.manual_reason = None, ""
        status.save(update_fields=["tier", "tier_since", "manual_until", "manual_reason"])
        audit_record(
            actor=actor,
            action="tier.manual_end",
            target=status,
            reason=reason,
            before=before,
            after={"tier": str(pt.tier(status.tier_id) or ""), "manual_until": None},
        )
    return status
