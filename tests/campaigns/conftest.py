import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from loyalty.campaigns.models import Campaign, Variant
from loyalty.campaigns.services import campaigns as services
from loyalty.core import clock
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.services.accounts import account_open
from segments.models import SegmentKind
from segments.services.segments import segment_create, segment_static_members_add
from tests.messaging.conftest import NOON, make_content, make_member

__all__ = ["NOON", "make_campaign", "make_content", "make_program_member", "make_segment", "staff"]


def make_program_member(**fields):
    """An active member of the default program with marketing consent on every channel."""
    fields.setdefault("marketing", ("",))
    member = make_member(**fields)
    account_open(member=member, program=ledger_selectors.program_default())
    return member


def make_segment(name: str, members) -> object:
    segment = segment_create(name=name, kind=SegmentKind.STATIC)
    segment_static_members_add(segment=segment, member_ids=[m.pk for m in members])
    return segment


def make_campaign(*, include=(), exclude=(), variants=(("A", 1),), **fields) -> Campaign:
    fields.setdefault("name", "Spring")
    fields.setdefault("channels", ["email"])
    fields.setdefault("holdout_percent", 10)
    fields.setdefault("content", make_content())
    campaign = Campaign(program=ledger_selectors.program_default(), **fields)
    services.campaign_save(campaign=campaign, actor="test")
    campaign.segments_include.set(include)
    campaign.segments_exclude.set(exclude)
    for name, weight in variants:
        Variant.objects.create(campaign=campaign, name=name, weight=weight)
    return campaign


def staff(role: str):
    user = get_user_model().objects.create_user(f"staff-{role}".replace(" ", "-"), is_staff=True)
    if role != "no role":
        user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def noon():
    clock.set_now(NOON)
    return NOON


@pytest.fixture
def marketing():
    return staff("Marketing")


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)
