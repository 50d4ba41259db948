"""``load_demo`` leaves one finished campaign whose results page works; a rerun adds none."""

import pytest
from django.core.management import call_command

from loyalty.campaigns.models import Campaign, CampaignStatus
from loyalty.campaigns.results import campaign_results
from loyalty.campaigns.selectors.attribution import campaign_arms

pytestmark = pytest.mark.django_db


def test_load_demo_has_one_finished_campaign_with_results(capsys):
    call_command("load_demo", "--households", "25")
    call_command("load_demo", "--households", "25")

    campaign = Campaign.objects.get()
    assert campaign.status == CampaignStatus.FINISHED
    results = campaign_results(campaign_arms(campaign), bootstrap=200)
    assert sum(arm.reach for arm in results.arms) == campaign.audience_size == 25
    assert [arm.name for arm in results.arms] == ["holdout", "Dairy offer", "Reminder"]
    assert "Demo campaign: " in capsys.readouterr().out
