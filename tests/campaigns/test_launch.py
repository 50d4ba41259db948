"""Launching a campaign: the audience snapshot (segments in minus out, active members of the
program) with stored arms, messages queued for the treated arms only, audited status changes,
permissions, and re-runs that queue nothing twice."""

import datetime as dt

import pytest
from django.db.models import F

from loyalty.campaigns import assignment
from loyalty.campaigns.models import HOLDOUT, CampaignMember, CampaignRun, CampaignStatus, Recurrence
from loyalty.campaigns.services import campaigns as services
from loyalty.core import clock
from loyalty.core.errors import Conflict, PermissionDenied, ValidationFailed
from loyalty.core.models import AuditEvent
from loyalty.messaging.models import Message, MessageStatus, Purpose
from members.models import MemberStatus
from segments.models import SegmentMembership
from tests.campaigns.conftest import make_campaign, make_content, make_program_member, make_segment, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _noon(noon):
    return noon


def launched(campaign, actor="test"):
    return services.campaign_launch(campaign=campaign, actor=actor)


def test_audience_is_included_segments_minus_excluded_active_program_members():
    a, b, c, d = (make_program_member() for _ in range(4))
    outsider = make_program_member()  # in no included segment
    closed = make_program_member()
    closed.status = MemberStatus.SUSPENDED
    closed.save(update_fields=["status"])
    campaign = make_campaign(
        include=[make_segment("in", [a, b, c, closed])], exclude=[make_segment("out", [c, d])], holdout_percent=0
    )

    launched(campaign)

    assert set(CampaignMember.objects.filter(campaign=campaign).values_list("member_id", flat=True)) == {a.pk, b.pk}
    assert outsider.pk not in set(Message.objects.values_list("member_id", flat=True))
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert campaign.audience_size == 2


def test_stored_arms_are_the_keyed_hash_of_each_member():
    members = [make_program_member() for _ in range(30)]
    campaign = make_campaign(include=[make_segment("all", members)], variants=(("A", 1), ("B", 1)), holdout_percent=30)

    launched(campaign)

    arms = services.arms_boundaries(campaign)
    stored = dict(CampaignMember.objects.filter(campaign=campaign).values_list("member_id", "arm"))
    assert stored == {m.pk: assignment.arm_of(key=campaign.secret_key, member_id=m.pk, arms=arms) for m in members}


def test_holdout_members_receive_no_message():
    members = [make_program_member() for _ in range(40)]
    campaign = make_campaign(include=[make_segment("all", members)], holdout_percent=50, channels=["email", "sms"])

    launched(campaign)

    holdout = set(CampaignMember.objects.filter(campaign=campaign, arm=HOLDOUT).values_list("member_id", flat=True))
    treated = set(CampaignMember.objects.filter(campaign=campaign, arm="A").values_list("member_id", flat=True))
    assert holdout and treated
    messaged = set(Message.objects.filter(campaign_id=campaign.pk).values_list("member_id", flat=True))
    assert messaged == treated
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 2 * len(treated)
    assert set(Message.objects.filter(campaign_id=campaign.pk).values_list("variant", "source")) == {("A", "campaign")}


def test_each_variant_sends_its_own_content():
    members = [make_program_member() for _ in range(30)]
    own = make_content(name="B's own")
    campaign = make_campaign(include=[make_segment("all", members)], variants=(("A", 1), ("B", 1)), holdout_percent=0)
    campaign.variants.filter(name="B").update(content=own)

    launched(campaign)

    contents = dict(Message.objects.filter(campaign_id=campaign.pk).values_list("variant", "content_id").distinct())
    assert contents == {"A": campaign.content_id, "B": own.pk}


def test_messages_are_sent_by_messaging_with_its_suppression(django_capture_on_commit_callbacks):
    consenting = make_program_member()
    silent = make_program_member(marketing=())
    campaign = make_campaign(include=[make_segment("all", [consenting, silent])], holdout_percent=0)

    with django_capture_on_commit_callbacks(execute=True):  # Celery runs eagerly: sent after commit
        launched(campaign)

    statuses = dict(Message.objects.filter(campaign_id=campaign.pk).values_list("member_id", "status"))
    assert statuses == {consenting.pk: MessageStatus.SENT, silent.pk: MessageStatus.SUPPRESSED}


def test_snapshot_at_launch_is_unaffected_by_later_segment_changes():
    first = [make_program_member() for _ in range(5)]
    segment = make_segment("seg", first)
    campaign = make_campaign(include=[segment], holdout_percent=0, recurrence=Recurrence.MONTHLY)
    launched(campaign)
    before = set(CampaignMember.objects.filter(campaign=campaign).values_list("member_id", "arm"))

    SegmentMembership.objects.filter(segment=segment, member=first[0]).update(left_at=F("entered_at"))
    newcomer = make_program_member()
    make_segment("other", [newcomer])
    from segments.services.segments import segment_static_members_add

    segment_static_members_add(segment=segment, member_ids=[newcomer.pk])
    clock.set_now(clock.now() + dt.timedelta(days=32))
    services.campaigns_run_due()

    assert set(CampaignMember.objects.filter(campaign=campaign).values_list("member_id", "arm")) == before
    assert CampaignRun.objects.filter(campaign=campaign).count() == 2
    second_run = set(
        Message.objects.filter(send_key__startswith=f"campaign:{campaign.pk}:2:").values_list("member_id", flat=True)
    )
    assert second_run == {m.pk for m in first}


def test_a_run_retried_queues_nothing_twice():
    members = [make_program_member() for _ in range(6)]
    campaign = make_campaign(include=[make_segment("all", members)], holdout_percent=0)
    launched(campaign)
    count = Message.objects.count()

    assert services.campaign_run(campaign=campaign, number=1) is None
    services.campaign_run(campaign=campaign, number=2)
    assert services.campaign_run(campaign=campaign, number=2) is None

    assert Message.objects.count() == 2 * count
    assert CampaignRun.objects.filter(campaign=campaign).count() == 2


def test_campaign_frequency_cap_leaves_out_members_who_had_enough():
    members = [make_program_member() for _ in range(4)]
    campaign = make_campaign(
        include=[make_segment("all", members)], holdout_percent=0, frequency_cap=2, frequency_cap_days=30
    )
    launched(campaign)

    services.campaign_run(campaign=campaign, number=2)
    third = services.campaign_run(campaign=campaign, number=3)

    assert Message.objects.filter(campaign_id=campaign.pk).count() == 8
    assert (third.queued, third.capped) == (0, 4)
    clock.set_now(clock.now() + dt.timedelta(days=31))
    assert services.campaign_run(campaign=campaign, number=4).queued == 4


def test_launch_is_audited_with_who_and_the_audience():
    members = [make_program_member() for _ in range(3)]
    campaign = make_campaign(include=[make_segment("all", members)], holdout_percent=0)
    user = staff("Marketing")

    launched(campaign, actor=user)

    event = AuditEvent.objects.get(action="campaign.launched")
    assert event.actor == user
    assert event.before == {"status": "draft"}
    assert event.after["audience_size"] == 3


@pytest.mark.parametrize("role", ["Support", "Analyst", "no role"])
def test_only_marketing_may_launch(role):
    members = [make_program_member() for _ in range(3)]
    campaign = make_campaign(include=[make_segment("all", members)])

    with pytest.raises(PermissionDenied):
        launched(campaign, actor=staff(role))

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not CampaignMember.objects.exists() and not Message.objects.exists()


@pytest.mark.parametrize(
    ("start", "change"),
    [
        ("running", services.campaign_launch),
        ("running", services.campaign_schedule),
        ("finished", services.campaign_launch),
        ("finished", services.campaign_cancel),
        ("cancelled", services.campaign_launch),
        ("cancelled", services.campaign_finish),
        ("draft", services.campaign_finish),
        ("running", services.campaign_unschedule),
    ],
)
def test_illegal_status_changes_are_refused_and_change_nothing(start, change):
    campaign = make_campaign()
    campaign.__class__.objects.filter(pk=campaign.pk).update(status=start)

    with pytest.raises(Conflict) as refused:
        change(campaign=campaign, actor="test")

    assert refused.value.code == "campaign_status_invalid"
    campaign.refresh_from_db()
    assert campaign.status == start
    assert not AuditEvent.objects.filter(
        action__in=["campaign.launched", "campaign.scheduled", "campaign.cancelled", "campaign.finished"]
    ).exists()


def test_schedule_then_the_scheduler_launches_at_the_start():
    members = [make_program_member() for _ in range(3)]
    campaign = make_campaign(include=[make_segment("all", members)], starts_at=clock.now() + dt.timedelta(hours=2))
    services.campaign_schedule(campaign=campaign, actor=staff("Marketing"))

    assert services.campaigns_run_due()["launched"] == 0
    clock.set_now(clock.now() + dt.timedelta(hours=2))
    assert services.campaigns_run_due()["launched"] == 1

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert AuditEvent.objects.get(action="campaign.launched").actor_label == "scheduler"


def test_scheduling_needs_a_start_in_the_future():
    campaign = make_campaign()

    with pytest.raises(ValidationFailed) as refused:
        services.campaign_schedule(campaign=campaign, actor="test")

    assert refused.value.code == "campaign_start_required"


def test_a_one_time_campaign_finishes_after_its_attribution_window():
    members = [make_program_member() for _ in range(2)]
    campaign = make_campaign(include=[make_segment("all", members)], attribution_days=7)
    launched(campaign)

    clock.set_now(clock.now() + dt.timedelta(days=7))
    assert services.campaigns_run_due()["finished"] == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FINISHED


def test_yearly_campaign_runs_again_a_year_later_at_its_send_time():
    members = [make_program_member() for _ in range(2)]
    campaign = make_campaign(
        include=[make_segment("all", members)], holdout_percent=0, recurrence=Recurrence.YEARLY, send_time=dt.time(9, 0)
    )
    launched(campaign)
    campaign.refresh_from_db()

    assert campaign.next_run_at == dt.datetime(2031, 3, 12, 9, 0, tzinfo=dt.UTC)


def test_an_empty_audience_is_refused_and_nothing_is_written():
    campaign = make_campaign(include=[make_segment("empty", [])])

    with pytest.raises(Conflict) as refused:
        launched(campaign)

    assert refused.value.code == "campaign_audience_empty"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT
    assert not CampaignMember.objects.exists()


def test_a_service_content_cannot_be_sent_as_a_campaign():
    member = make_program_member()
    campaign = make_campaign(include=[make_segment("one", [member])], content=make_content(purpose=Purpose.SERVICE))

    with pytest.raises(ValidationFailed) as refused:
        launched(campaign)

    assert refused.value.code == "campaign_content_not_marketing"


def test_a_launched_campaign_cannot_be_edited():
    member = make_program_member()
    campaign = make_campaign(include=[make_segment("one", [member])])
    launched(campaign)

    campaign.holdout_percent = 50
    with pytest.raises(Conflict) as refused:
        services.campaign_save(campaign=campaign, actor="test")

    assert refused.value.code == "campaign_not_editable"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("channels", [], "campaign_channels_required"),
        ("channels", ["fax"], "invalid_channel"),
        ("holdout_percent", 100, "campaign_holdout_range"),
        ("attribution_days", 0, "campaign_attribution_days"),
    ],
)
def test_bad_campaign_input_is_a_clear_error(field, value, code):
    with pytest.raises(ValidationFailed) as refused:
        make_campaign(**{field: value})

    assert refused.value.code == code


def test_dispatch_task_delivered_twice_sends_each_message_once(mailoutbox):
    members = [make_program_member() for _ in range(4)]
    campaign = make_campaign(include=[make_segment("all", members)], holdout_percent=0)
    launched(campaign)  # not committed in this test: nothing was handed over yet

    services.campaign_messages_dispatch(campaign_id=campaign.pk)  # Celery eager: sent now
    services.campaign_messages_dispatch(campaign_id=campaign.pk)  # the task again

    assert list(Message.objects.values_list("status", flat=True)) == [MessageStatus.SENT] * 4
    assert len(mailoutbox) == 4
