"""Campaigns: save, schedule, launch, run, finish, cancel. Every status change is one transaction
under the campaign's row lock, audited (``campaign.<verb>``); launching, scheduling, finishing and
cancelling need ``campaigns.launch_campaign`` when a person acts (Marketing).

Launch builds the audience snapshot set-based: one ``INSERT ... SELECT`` of the program's active
members in any included segment and in no excluded one, with each member's arm computed in the same
statement on PostgreSQL (``assignment.bucket_sql``; elsewhere in Python by the same function), then
queues run 1. A run queues each variant's content to the variant's members through
``messaging.services.messages_queue_members`` (send key ``campaign:<id>:<run>:<arm>``: a retried
run queues nothing twice; the holdout is never queued); consent, preferences, quiet hours and
weekly caps are decided by messaging at send time, the campaign's own frequency cap at queue time."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet

from loyalty.campaigns import assignment
from loyalty.campaigns.models import (
    Campaign,
    CampaignMember,
    CampaignRun,
    CampaignStatus,
    Recurrence,
)
from loyalty.core import clock
from loyalty.core.errors import Conflict, PermissionDenied, ValidationFailed
from loyalty.core.services import Actor, audit_record, model_delete_audited, model_save_audited
from loyalty.ledger.models import Account, AccountKind
from loyalty.messaging.models import Channel, Content, Message, MessageStatus, Purpose
from loyalty.messaging.services import messages_queue_members, sending
from members.models import MemberStatus
from segments.models import SegmentMembership

if TYPE_CHECKING:
    from loyalty.messaging.models import Content as ContentType

logger = logging.getLogger(__name__)
LAUNCH_PERMISSION = "campaigns.launch_campaign"
SAVED_FIELDS = (
    "program",
    "name",
    "goal",
    "content",
    "channels",
    "starts_at",
    "ends_at",
    "send_time",
    "recurrence",
    "frequency_cap",
    "frequency_cap_days",
    "attribution_days",
    "holdout_percent",
)
DEFAULT_ARM = "main"

# (from, to) -> audit verb; anything else is refused (campaign_status_invalid)
TRANSITIONS = {
    (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED): "scheduled",
    (CampaignStatus.SCHEDULED, CampaignStatus.DRAFT): "unscheduled",
    (CampaignStatus.DRAFT, CampaignStatus.RUNNING): "launched",
    (CampaignStatus.SCHEDULED, CampaignStatus.RUNNING): "launched",
    (CampaignStatus.RUNNING, CampaignStatus.FINISHED): "finished",
    (CampaignStatus.DRAFT, CampaignStatus.CANCELLED): "cancelled",
    (CampaignStatus.SCHEDULED, CampaignStatus.CANCELLED): "cancelled",
    (CampaignStatus.RUNNING, CampaignStatus.CANCELLED): "cancelled",
}


@dataclass(frozen=True)
class Arm:
    name: str
    weight: int
    content: ContentType


def campaign_variants_record(*, campaign: Campaign, actor: Actor, reason: str = "") -> None:
    """Audit the variants as saved with the campaign (the admin's inline): names, weights, contents."""
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if stored.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise Conflict("The variants of a launched campaign cannot change", code="campaign_not_editable")
        variants = [
            {"name": v.name, "weight": v.weight, "content": v.content_id} for v in stored.variants.order_by("name")
        ]
        audit_record(
            actor=actor, action="campaign.variants_changed", target=stored, reason=reason, after={"variants": variants}
        )


def _invalid(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={field: [message]})


def _check_may_launch(actor: Actor) -> None:
    """People need the launch permission; the scheduler (a label or None) acts for whoever scheduled."""
    if getattr(actor, "pk", None) is not None and not actor.has_perm(LAUNCH_PERMISSION):
        raise PermissionDenied("Only Marketing may launch, schedule or stop campaigns", code="campaign_launch_denied")


def campaign_arms(campaign: Campaign) -> list[Arm]:
    """The treatment arms: the variants (by name), or one arm ``main`` with the campaign's content."""
    variants = list(campaign.variants.select_related("content").order_by("name"))
    if not variants:
        return [Arm(name=DEFAULT_ARM, weight=1, content=campaign.content)]
    return [Arm(name=v.name, weight=v.weight, content=v.content or campaign.content) for v in variants]


def arms_boundaries(campaign: Campaign, arms: list[Arm] | None = None) -> assignment.Arms:
    arms = arms if arms is not None else campaign_arms(campaign)
    return assignment.Arms.of(holdout_percent=campaign.holdout_percent, variants=[(a.name, a.weight) for a in arms])


def campaign_validate(campaign: Campaign) -> None:
    """What a campaign must be before it is saved (and again at launch)."""
    channels = campaign.channels
    if not isinstance(channels, list) or not channels:
        raise _invalid("channels", "Choose at least one channel", "campaign_channels_required")
    unknown = sorted({str(c) for c in channels} - set(Channel.values))
    if unknown:
        raise _invalid("channels", f"Unknown channel(s): {', '.join(unknown)}", "invalid_channel")
    if len(set(channels)) != len(channels):
        raise _invalid("channels", "A channel is listed twice", "campaign_channel_twice")
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        raise _invalid("ends_at", "The end must be after the start", "campaign_ends_before_start")
    if not 0 <= campaign.holdout_percent < 100:
        raise _invalid("holdout_percent", "The holdout is a percentage from 0 to under 100", "campaign_holdout_range")
    if campaign.attribution_days < 1:
        raise _invalid("attribution_days", "The attribution window is at least one day", "campaign_attribution_days")


def campaign_save(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    """Create or change a campaign (audited). Only drafts and scheduled campaigns change: the
    audience, arms and content of a launched campaign are what its results are about."""
    created = campaign.pk is None
    campaign_validate(campaign)
    now = clock.now()
    with transaction.atomic():
        if not created:
            stored = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if stored.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
                raise Conflict(
                    f"A {stored.get_status_display().lower()} campaign cannot be changed",
                    code="campaign_not_editable",
                )
            campaign.status = stored.status
        else:
            campaign.created_at = now
            campaign.status = CampaignStatus.DRAFT
        campaign.updated_at = now
        return model_save_audited(
            instance=campaign, actor=actor, created=created, fields=SAVED_FIELDS, action="campaign", reason=reason
        )


def campaign_delete(*, campaign: Campaign, actor: Actor, reason: str = "") -> None:
    """Only a draft is deleted; a campaign that was scheduled or ran is cancelled instead."""
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if stored.status != CampaignStatus.DRAFT:
            raise Conflict("Only a draft campaign can be deleted; cancel it instead", code="campaign_not_draft")
        model_delete_audited(instance=stored, actor=actor, fields=SAVED_FIELDS, action="campaign", reason=reason)


def _transition(stored: Campaign, to: str) -> str:
    verb = TRANSITIONS.get((stored.status, to))
    if verb is None:
        raise Conflict(
            f"A {stored.get_status_display().lower()} campaign cannot become {CampaignStatus(to).label.lower()}",
            code="campaign_status_invalid",
            extra={"status": stored.status},
        )
    return verb


def _status_change(*, campaign: Campaign, to: str, actor: Actor, reason: str, **fields) -> Campaign:
    _check_may_launch(actor)
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().get(pk=campaign.pk)
        verb = _transition(stored, to)
        before = stored.status
        now = clock.now()
        if to == CampaignStatus.SCHEDULED and (stored.starts_at is None or stored.starts_at <= now):
            raise _invalid(
                "starts_at", "Give a start in the future to schedule (or launch now)", "campaign_start_required"
            )
        Campaign.objects.filter(pk=stored.pk).update(status=to, updated_at=now, **fields)
        audit_record(
            actor=actor,
            action=f"campaign.{verb}",
            target=stored,
            reason=reason,
            before={"status": before},
            after={"status": to, **fields},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_schedule(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    """A draft waits for its ``starts_at``; the scheduler launches it then."""
    return _status_change(campaign=campaign, to=CampaignStatus.SCHEDULED, actor=actor, reason=reason)


def campaign_unschedule(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    return _status_change(campaign=campaign, to=CampaignStatus.DRAFT, actor=actor, reason=reason)


def campaign_cancel(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    """No further runs (messages already queued still go; the results stay)."""
    return _status_change(campaign=campaign, to=CampaignStatus.CANCELLED, actor=actor, reason=reason, next_run_at=None)


def campaign_finish(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    """No further runs; the results stay (attribution keeps its window from the launch)."""
    return _status_change(
        campaign=campaign,
        to=CampaignStatus.FINISHED,
        actor=actor,
        reason=reason,
        next_run_at=None,
        finished_at=clock.now(),
    )


def audience_members(campaign: Campaign) -> QuerySet:
    """The program's active members in any included segment (none included: all) and in no
    excluded one, as a query of member ids (accounts of the program)."""
    include = list(campaign.segments_include.values_list("pk", flat=True))
    exclude = list(campaign.segments_exclude.values_list("pk", flat=True))
    accounts = Account.objects.filter(
        program_id=campaign.program_id, kind=AccountKind.MEMBER, member__status=MemberStatus.ACTIVE
    )
    if include:
        accounts = accounts.filter(
            Exists(
                SegmentMembership.objects.filter(
                    member_id=OuterRef("member_id"), segment_id__in=include, left_at__isnull=True
                )
            )
        )
    if exclude:
        accounts = accounts.exclude(
            Exists(
                SegmentMembership.objects.filter(
                    member_id=OuterRef("member_id"), segment_id__in=exclude, left_at__isnull=True
                )
            )
        )
    return accounts.values_list("member_id", flat=True)


def _snapshot(campaign: Campaign, arms: assignment.Arms) -> int:
    """Write the audience snapshot with arms; returns its size."""
    members = audience_members(campaign)
    table = CampaignMember._meta.db_table
    if connection.vendor == "postgresql":
        members_sql, members_params = members.query.sql_with_params()
        case_sql, case_params = assignment.arm_sql(arms)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""INSERT INTO {table} (campaign_id, member_id, arm)
                    SELECT %s, b.member_id, {case_sql}
                    FROM (SELECT s.member_id, {assignment.bucket_sql("s.member_id")} AS bucket
                          FROM ({members_sql}) AS s(member_id)) AS b
                    ON CONFLICT (campaign_id, member_id) DO NOTHING""",  # noqa: S608 - own table, ORM query
                [campaign.pk, *case_params, campaign.secret_key, *members_params],
            )
            return cursor.rowcount
    rows = [
        CampaignMember(
            campaign_id=campaign.pk,
            member_id=member_id,
            arm=assignment.arm_of(key=campaign.secret_key, member_id=member_id, arms=arms),
        )
        for member_id in members.iterator(chunk_size=5000)
    ]
    CampaignMember.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


def _next_run_at(campaign: Campaign, after_number: int) -> dt.datetime | None:
    """When run ``after_number + 1`` is due: the launch day plus whole months or years, at the
    send time (UTC) when one is set; None when the campaign does not recur or would end first."""
    if campaign.recurrence == Recurrence.NONE or campaign.launched_at is None:
        return None
    step = relativedelta(months=1) if campaign.recurrence == Recurrence.MONTHLY else relativedelta(years=1)
    due = campaign.launched_at + step * after_number
    if campaign.send_time is not None:
        due = dt.datetime.combine(due.date(), campaign.send_time, tzinfo=dt.UTC)
    if campaign.ends_at is not None and due >= campaign.ends_at:
        return None
    return due


def _run(campaign: Campaign, *, number: int, now: dt.datetime) -> CampaignRun | None:
    """Queue run ``number`` of a locked, running campaign; a run already done is not repeated."""
    run, created = CampaignRun.objects.get_or_create(campaign=campaign, number=number, defaults={"ran_at": now})
    if not created:
        return None
    queued = expected = 0
    cap = (campaign.frequency_cap, campaign.frequency_cap_days) if campaign.frequency_cap is not None else None
    sizes = dict(
        CampaignMember.objects.filter(campaign=campaign)
        .values("arm")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("arm", "n")
    )
    for arm in campaign_arms(campaign):
        if not sizes.get(arm.name):
            continue
        ids = messages_queue_members(
            content=arm.content,
            members=CampaignMember.objects.filter(campaign=campaign, arm=arm.name).values_list("member_id", flat=True),
            channels=campaign.channels,
            source="campaign",
            key=f"campaign:{campaign.pk}:{number}:{arm.name}",
            program=campaign.program,
            campaign_id=campaign.pk,
            variant=arm.name,
            campaign_cap=cap,
            dispatch=False,
        )
        queued += len(ids)
        expected += sizes[arm.name] * len(campaign.channels)
    run.queued, run.capped = queued, expected - queued
    run.save(update_fields=["queued", "capped"])
    if queued:
        transaction.on_commit(lambda: _dispatch_later(campaign.pk))
    campaign.runs_done = number
    campaign.next_run_at = _next_run_at(campaign, number)
    Campaign.objects.filter(pk=campaign.pk).update(runs_done=number, next_run_at=campaign.next_run_at, updated_at=now)
    return run


def _dispatch_later(campaign_id: int) -> None:
    """One Celery task hands the run's messages to the send batches: a launch to a million members
    does not wait for thousands of hand-offs to the broker."""
    from loyalty.campaigns.tasks import campaign_dispatch

    campaign_dispatch.delay(campaign_id)


def campaign_messages_dispatch(*, campaign_id: int) -> int:
    """Hand the campaign's queued messages to messaging's send batches (a message handed over twice
    is sent once: the claim). Returns the tasks sent."""
    ids = list(
        Message.objects.filter(campaign_id=campaign_id, status=MessageStatus.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return sending.messages_dispatch(message_ids=ids)


def _check_contents(campaign: Campaign, arms: list[Arm]) -> None:
    for arm in arms:
        content: Content = arm.content
        if content.purpose != Purpose.MARKETING:
            raise ValidationFailed(
                f"Content “{content}” is a service message; campaigns send marketing content",
                code="campaign_content_not_marketing",
            )
        if not content.is_active:
            raise ValidationFailed(f"Content “{content}” is switched off", code="campaign_content_inactive")


def campaign_launch(*, campaign: Campaign, actor: Actor, reason: str = "") -> Campaign:
    """Launch now: snapshot the audience with arms, queue run 1 (the holdout gets nothing), in one
    transaction; the messages leave by Celery after commit. Refused, with nothing written, when the
    campaign is not a draft or scheduled, its content is not sendable, or its audience is empty."""
    _check_may_launch(actor)
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().select_related("program", "content").get(pk=campaign.pk)
        verb = _transition(stored, CampaignStatus.RUNNING)
        before = stored.status
        campaign_validate(stored)
        arms = campaign_arms(stored)
        _check_contents(stored, arms)
        now = clock.now()
        if stored.ends_at is not None and stored.ends_at <= now:
            raise _invalid("ends_at", "The campaign's end has passed", "campaign_ended")
        size = _snapshot(stored, arms_boundaries(stored, arms))
        if size == 0:
            raise Conflict("Nobody is in the audience: check the segments", code="campaign_audience_empty")
        stored.status, stored.launched_at, stored.audience_size = CampaignStatus.RUNNING, now, size
        Campaign.objects.filter(pk=stored.pk).update(
            status=CampaignStatus.RUNNING, launched_at=now, audience_size=size, updated_at=now
        )
        run = _run(stored, number=1, now=now)
        audit_record(
            actor=actor,
            action=f"campaign.{verb}",
            target=stored,
            reason=reason,
            before={"status": before},
            after={"status": CampaignStatus.RUNNING, "audience_size": size, "queued": run.queued if run else 0},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_run(*, campaign: Campaign, number: int) -> CampaignRun | None:
    """Re-run ``number`` of a running campaign (the scheduler's recurrences). Idempotent: a run
    already queued, or a campaign no longer running, queues nothing (None)."""
    with transaction.atomic():
        stored = Campaign.objects.select_for_update().select_related("program", "content").get(pk=campaign.pk)
        if stored.status != CampaignStatus.RUNNING:
            return None
        return _run(stored, number=number, now=clock.now())


def campaigns_run_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The scheduler (every minute): scheduled campaigns whose start came are launched; running
    ones whose next run is due are re-run; running ones past their end (or, without end and
    recurrence, past their attribution window) are finished. Each campaign in its own transaction;
    a campaign that cannot launch (empty audience, content switched off) stays scheduled, is
    logged and is tried again next minute."""
    now = now or clock.now()
    done = {"launched": 0, "runs": 0, "finished": 0, "failed": 0}
    for campaign in Campaign.objects.filter(status=CampaignStatus.SCHEDULED, starts_at__lte=now).order_by("pk"):
        try:
            campaign_launch(campaign=campaign, actor="scheduler", reason="scheduled start")
            done["launched"] += 1
        except (Conflict, ValidationFailed) as exc:
            logger.warning("campaign %s not launched: %s", campaign.pk, exc)
            done["failed"] += 1
    for campaign in Campaign.objects.filter(status=CampaignStatus.RUNNING, next_run_at__lte=now).order_by("pk"):
        if campaign_run(campaign=campaign, number=campaign.runs_done + 1) is not None:
            done["runs"] += 1
    for campaign in Campaign.objects.filter(status=CampaignStatus.RUNNING).order_by("pk"):
        over = campaign.ends_at is not None and campaign.ends_at <= now
        if campaign.ends_at is None and campaign.recurrence == Recurrence.NONE and campaign.launched_at:
            over = campaign.launched_at + dt.timedelta(days=campaign.attribution_days) <= now
        if over:
            try:
                campaign_finish(campaign=campaign, actor="scheduler", reason="end reached")
                done["finished"] += 1
            except Conflict:
                pass
    return done


__all__ = [
    "TRANSITIONS",
    "Arm",
    "arms_boundaries",
    "audience_members",
    "campaign_arms",
    "campaign_cancel",
    "campaign_delete",
    "campaign_finish",
    "campaign_launch",
    "campaign_messages_dispatch",
    "campaign_run",
    "campaign_save",
    "campaign_schedule",
    "campaign_unschedule",
    "campaign_validate",
    "campaign_variants_record",
    "campaigns_run_due",
]
