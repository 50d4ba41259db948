"""What each arm of a campaign did, for its results (``loyalty.campaigns.results.campaign_results``).

The attribution window runs from the launch for ``attribution_days`` days (start included, end
excluded). For each arm (every variant, and the holdout, which received nothing):

- revenue: each member's purchases in the program within the window, at their eligible spend less
  what was returned of them (as segments count spend), one value per member of the arm (0 for
  members who bought nothing), so the arm's reach is its size in the audience snapshot;
- converted: members whose attributed revenue is above 0;
- delivered, opened, clicked: members with at least one of the campaign's messages sent, opened,
  clicked (from the ``Message`` rows with the campaign's id and the arm as variant);
- points cost: offer points the campaign's offers gave arm members in the window, at the program's
  point value; reward cost: ``cost_to_business`` of the campaign's rewards arm members redeemed in
  the window (not cancelled); message cost: messages sent per channel at ``MESSAGING_COSTS``.

Each figure is one grouped query over all arms (no loop over members)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import Count, F, OuterRef, Q, Subquery, Sum

from loyalty.campaigns.models import HOLDOUT, Campaign, CampaignMember
from loyalty.campaigns.results import ArmData
from loyalty.ledger.models import Purchase
from loyalty.messaging.costs import messages_cost
from loyalty.messaging.models import Message, MessageStatus
from offers.models import OfferRedemption, RedemptionState, RewardRedemption


def attribution_window(campaign: Campaign) -> tuple[dt.datetime, dt.datetime] | None:
    """[launch, launch + attribution days): None before the launch."""
    if campaign.launched_at is None:
        return None
    return campaign.launched_at, campaign.launched_at + dt.timedelta(days=campaign.attribution_days)


def arm_sizes(campaign: Campaign) -> dict[str, int]:
    """Members of each arm in the audience snapshot."""
    return dict(
        CampaignMember.objects.filter(campaign=campaign)
        .values("arm")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("arm", "n")
    )


def _arm_names(campaign: Campaign, sizes: dict[str, int]) -> list[str]:
    """The holdout first, then the arms in the snapshot (or the variants, before any snapshot)."""
    names = set(sizes) | {v.name for v in campaign.variants.all()}
    if not campaign.variants.exists():
        names.add("main")
    if campaign.holdout_percent > 0:
        names.add(HOLDOUT)
    return sorted(names, key=lambda name: (name != HOLDOUT, name))


def _revenue_by_member(campaign: Campaign, start: dt.datetime, end: dt.datetime) -> dict[str, list[float]]:
    """arm -> attributed revenue of each member who bought in the window (others are 0)."""
    purchases = Purchase._meta.db_table
    audience = CampaignMember._meta.db_table
    sql = f"""SELECT cm.arm, SUM(p.eligible_amount - p.returned_amount)
              FROM {purchases} p JOIN {audience} cm ON cm.member_id = p.member_id AND cm.campaign_id = %s
              WHERE p.program_id = %s AND p.occurred_at >= %s AND p.occurred_at < %s
              GROUP BY cm.arm, p.member_id"""  # noqa: S608 - the models' own tables
    revenue: dict[str, list[float]] = defaultdict(list)
    with connection.cursor() as cursor:
        adapt = connection.ops.adapt_datetimefield_value  # as the ORM stores them (SQLite compares text)
        cursor.execute(sql, [campaign.pk, campaign.program_id, adapt(start), adapt(end)])
        for arm, net in cursor.fetchall():
            revenue[arm].append(float(net))
    return revenue


def campaign_arms(campaign: Campaign) -> list[ArmData]:
    """One ``ArmData`` per arm, the holdout first (see the module's docstring)."""
    sizes = arm_sizes(campaign)
    names = _arm_names(campaign, sizes)
    window = attribution_window(campaign)
    revenue: dict[str, list[float]] = {}
    points: dict[str, int] = {}
    rewards: dict[str, Decimal] = {}
    if window is not None:
        start, end = window
        revenue = _revenue_by_member(campaign, start, end)
        arm_of_member = CampaignMember.objects.filter(campaign=campaign, member_id=OuterRef("member_id")).values("arm")[
            :1
        ]
        points = dict(
            OfferRedemption.objects.filter(
                offer__in=campaign.offers.all(),
                status=RedemptionState.COMPLETED,
                created_at__gte=start,
                created_at__lt=end,
            )
            .annotate(arm=Subquery(arm_of_member))
            .filter(arm__isnull=False)
            .values("arm")
            .annotate(points=Sum("points"))
            .order_by()
            .values_list("arm", "points")
        )
        rewards = dict(
            RewardRedemption.objects.filter(
                reward__in=campaign.rewards.all(),
                status=RedemptionState.COMPLETED,
                created_at__gte=start,
                created_at__lt=end,
            )
            .annotate(arm=Subquery(arm_of_member))
            .filter(arm__isnull=False)
            .values("arm")
            .annotate(cost=Sum(F("reward__cost_to_business")))
            .order_by()
            .values_list("arm", "cost")
        )
    sent = Q(status=MessageStatus.SENT)
    engagement = {
        row["variant"]: row
        for row in Message.objects.filter(campaign_id=campaign.pk)
        .values("variant")
        .annotate(
            delivered=Count("member_id", distinct=True, filter=sent),
            opened=Count("member_id", distinct=True, filter=Q(opened_at__isnull=False)),
            clicked=Count("member_id", distinct=True, filter=Q(clicked_at__isnull=False)),
        )
        .order_by()
    }
    sent_per_channel: dict[str, dict[str, int]] = defaultdict(dict)
    for variant, channel, n in (
        Message.objects.filter(campaign_id=campaign.pk, status=MessageStatus.SENT)
        .values("variant", "channel")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("variant", "channel", "n")
    ):
        sent_per_channel[variant][channel] = n
    point_value = campaign.program.point_value
    arms = []
    for name in names:
        reach = sizes.get(name, 0)
        bought = revenue.get(name, [])
        values = np.zeros(reach, dtype=float)
        values[: len(bought)] = bought
        counts = engagement.get(name, {})
        arms.append(
            ArmData(
                name=name,
                is_holdout=name == HOLDOUT,
                revenue=values,
                converted=sum(1 for v in bought if v > 0),
                delivered=counts.get("delivered", 0),
                opened=counts.get("opened", 0),
                clicked=counts.get("clicked", 0),
                points_cost=(Decimal(points.get(name) or 0) * point_value).quantize(Decimal("0.01")),
                reward_cost=Decimal(rewards.get(name) or 0),
                message_cost=messages_cost(sent_per_channel.get(name, {})),
            )
        )
    return arms
