"""``load_demo`` leaves scores behind: rules on RFM segments and predicted CLV match right away."""

import pytest
from django.core.management import call_command

from loyalty.ledger.models import Purchase
from segments.models import MemberScore, ScoreRun

pytestmark = pytest.mark.django_db


def test_load_demo_scores_every_member_with_purchases(capsys):
    call_command("load_demo", "--households", "25")
    out = capsys.readouterr().out
    buyers = set(Purchase.objects.values_list("member_id", flat=True))
    assert len(buyers) == 25
    assert set(MemberScore.objects.values_list("member_id", flat=True)) == buyers
    run = ScoreRun.objects.get()
    assert run.members_scored == 25 and run.fit_members == 25
    assert "Scores: RFM and CLV of 25 members, predicted value by" in out
    assert not MemberScore.objects.filter(predicted_clv__isnull=True).exists()
