"""Campaigns under concurrency on PostgreSQL with real threads: one launch, one run per number,
the campaign's frequency cap and messaging's weekly cap hold when runs and sends race."""

import pytest

from loyalty.campaigns.models import CampaignMember, CampaignRun, CampaignStatus
from loyalty.campaigns.services import campaigns as services
from loyalty.core import clock
from loyalty.core.errors import Conflict
from loyalty.core.models import AuditEvent
from loyalty.messaging import services as messaging
from loyalty.messaging.models import Message, MessageStatus, Reason
from loyalty.messaging.services import sending
from tests.campaigns.conftest import NOON, make_campaign, make_program_member, make_segment
from tests.concurrency import run_together
from tests.messaging.conftest import set_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
RUNS = range(3)


@pytest.fixture(autouse=True)
def _noon_and_no_dispatch(monkeypatch):
    """Messages stay queued after commit: the tests send them (or not) themselves."""
    clock.set_now(NOON)
    monkeypatch.setattr(sending, "messages_dispatch", lambda *, message_ids: 0)


def audience(n=5):
    return make_segment("all", [make_program_member() for _ in range(n)])


@pytest.mark.parametrize("run", RUNS)
def test_concurrent_launches_launch_once(run):
    campaign = make_campaign(include=[audience()], holdout_percent=0)

    results = run_together(4, lambda i: services.campaign_launch(campaign=campaign, actor="test"))

    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 3, results
    assert {r.code for r in refused} == {"campaign_status_invalid"}
    assert AuditEvent.objects.filter(action="campaign.launched").count() == 1
    assert CampaignMember.objects.count() == 5
    assert Message.objects.count() == 5
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING


@pytest.mark.parametrize("run", RUNS)
def test_a_run_retried_while_it_runs_queues_once(run):
    campaign = make_campaign(include=[audience()], holdout_percent=0, channels=["email", "sms"])
    services.campaign_launch(campaign=campaign, actor="test")

    results = run_together(6, lambda i: services.campaign_run(campaign=campaign, number=2))

    assert sum(r is not None for r in results) == 1, results
    assert CampaignRun.objects.filter(campaign=campaign, number=2).count() == 1
    assert Message.objects.filter(send_key__startswith=f"campaign:{campaign.pk}:2:").count() == 10


@pytest.mark.parametrize("run", RUNS)
def test_campaign_frequency_cap_holds_under_concurrent_runs(run):
    campaign = make_campaign(include=[audience()], holdout_percent=0, frequency_cap=2, frequency_cap_days=7)
    services.campaign_launch(campaign=campaign, actor="test")

    results = run_together(6, lambda i: services.campaign_run(campaign=campaign, number=i + 2))

    assert all(r is not None for r in results), results
    assert sum(r.queued for r in results) == 5
    per_member = Message.objects.filter(campaign_id=campaign.pk).values_list("member_id", flat=True)
    assert sorted({list(per_member).count(m) for m in per_member}) == [2]


@pytest.mark.parametrize("run", RUNS)
def test_weekly_cap_holds_when_two_campaigns_send_to_a_member_at_once(run):
    set_policy(email_weekly_cap=1)
    segment = audience(1)
    first = make_campaign(name="first", include=[segment], holdout_percent=0)
    second = make_campaign(name="second", include=[segment], holdout_percent=0)
    for campaign in (first, second):
        services.campaign_launch(campaign=campaign, actor="test")
    queued = [
        list(Message.objects.filter(campaign_id=c.pk, status=MessageStatus.QUEUED).values_list("pk", flat=True))
        for c in (first, second)
    ]

    assert all(len(ids) == 1 for ids in queued)

    results = run_together(2, lambda i: messaging.messages_send(message_ids=queued[i]))

    assert all(isinstance(r, messaging.BatchResult) for r in results), results
    assert sorted(Message.objects.values_list("status", "reason")) == [
        (MessageStatus.SENT, ""),
        (MessageStatus.SUPPRESSED, Reason.FREQUENCY_CAP),
    ]
