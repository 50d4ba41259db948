"""Idempotent demo: the default program with three tiers and a few earning rules, about 300 real
households of The Complete Journey (dates shifted to end yesterday) with the data's campaigns as
offers, a catalog of rewards (one of each kind) and a few bonus-point offers, staff logins per
role and a member portal login linked to one real household (``cj-1``: a reward within reach).

  python manage.py load_demo [--households 300]
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from loyalty.activity.models import EarningRule
from loyalty.campaigns.models import Campaign, Variant
from loyalty.campaigns.services import campaigns as campaign_services
from loyalty.core import clock
from loyalty.core.services import model_save_audited
from loyalty.imports.complete_journey import complete_journey_import, dataset_load
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.models import Program
from loyalty.ledger.services import program_partner_add, program_update
from loyalty.messaging.models import Content
from loyalty.messaging.services import content_save
from loyalty.partners.services import partner_ensure
from loyalty.tiers.models import Tier
from loyalty.tiers.services import tier_create, tier_policy_set
from members.models import Member
from members.services import member_link_user
from offers.models import Offer, Reward
from segments.models import Segment
from segments.services import scores_compute, segment_create, segment_refresh

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed demo login, dev only
STAFF = (
    ("admin", None),
    ("marketing", "Marketing"),
    ("support", "Support"),
    ("analyst", "Analyst"),
)
TIERS = (
    ("Member", 0, {}, "1"),
    ("Silver", 1, {"spend": 1500}, "1.25"),
    ("Gold", 2, {"spend": 5000}, "1.5"),
)
RULES = (
    {
        "name": "Fresh produce double points",
        "kind": "category_multiplier",
        "categories": ["PRODUCE / APPLES", "PRODUCE / BERRIES", "PRODUCE / SALAD MIX", "PRODUCE / CARROTS"],
        "multiplier": Decimal("2"),
    },
    {
        "name": "Big basket bonus",
        "kind": "min_spend_bonus",
        "min_spend": Decimal("75"),
        "bonus_points": 50,
        "cap_per_month": 200,
    },
    {
        "name": "No points on tobacco and fuel",
        "kind": "exclude_categories",
        "categories": ["DRUG GM / CIGARETTES", "DRUG GM / TOBACCO OTHER", "DRUG GM / CIGARS", "FUEL / FUEL"],
    },
)
MEMBER_HOUSEHOLD = "cj-1"
ACTOR = "load_demo"
DAIRY = [
    "GROCERY / FLUID MILK PRODUCTS",
    "GROCERY / CHEESE",
    "GROCERY / YOGURT",
    "GROCERY / EGGS",
    "GROCERY / BUTTER",
    "GROCERY / MILK BY-PRODUCTS",
    "DELI / CHEESES",
]
DAIRY_SEGMENT = "Dairy buyers (last 90 days)"
VOUCHER_PARTNER = "Riverside Cinema"
NEAR_REWARD = "Weekend brunch for two"
# name, kind, points cost, value, sku, stock (None: unlimited), cost to the business, description
REWARDS = (
    ("$5 off your next shop", "amount_coupon", 500, "5.00", "", None, "5.00", "A $5 coupon for any basket."),
    ("15% off fresh produce", "percent_coupon", 800, "15", "", 500, "3.50", "15% off the produce in one basket."),
    ("Free dozen eggs", "free_product", 350, None, "840361", 200, "1.80", "A dozen large eggs (SKU 840361), on us."),
    ("$20 cinema voucher", "partner_voucher", 2000, "20.00", "", 50, "14.00", "Two tickets at Riverside Cinema."),
    ("Cooking class for two", "experience", 6000, None, "", 10, "60.00", "An evening class at our kitchen."),
    ("Donate a meal to the food bank", "donation", 250, "2.50", "", None, "2.50", "We give a meal for you."),
)


def demo_program_configure():
    """The default program as the demo shows it: a 14-day return window, points expiring 12
    months after earning, three tiers over rolling 12 months' spend, a few rules. Only what is
    missing is added."""
    program = ledger_selectors.program_default()
    if not Tier.objects.filter(program=program).exists():
        program.pending_days, program.expiry_policy, program.expiry_months = 14, "fixed_months", 12
        program_update(program=program, actor=None, changed=["pending_days", "expiry_policy", "expiry_months"])
        tier_policy_set(program=program, window="rolling_12_months", downgrade_policy="one_step")
        for name, rank, thresholds, multiplier in TIERS:
            tier_create(program=program, name=name, rank=rank, thresholds=thresholds, earn_multiplier=multiplier)
    for rule in RULES:
        EarningRule.objects.get_or_create(program=program, name=rule["name"], defaults=rule)
    return program


def _valid(days: int) -> dict[str, dt.datetime]:
    now = clock.now()
    return {"valid_from": now - dt.timedelta(days=1), "valid_until": now + dt.timedelta(days=days)}


def demo_offers(*, program: Program) -> list[Offer]:
    """Bonus-point offers of each shape the demo shows (a segment's multiplier, a birthday bonus,
    a clip-to-card offer, a tier-only offer, a budgeted offer); the missing ones are added (by
    name), audited as ``load_demo``."""
    dairy = Segment.objects.filter(name=DAIRY_SEGMENT).first() or segment_create(
        name=DAIRY_SEGMENT,
        description="Bought dairy in the last 90 days (demo).",
        rules={"field": "purchase.spend", "op": "gt", "value": 0, "window": {"last_days": 90}, "category": DAIRY},
        actor=ACTOR,
    )
    segment_refresh(segment=dairy)
    gold = Tier.objects.filter(program=program, name="Gold").first()
    offers: list[tuple[dict[str, Any], dict[str, list]]] = [
        (
            {
                "name": "Double points on dairy",
                "description": "Twice the points on milk, cheese, yogurt, eggs and butter.",
                "condition_kind": "category_bought",
                "condition_categories": DAIRY,
                "benefit_kind": "bonus_multiplier",
                "benefit_multiplier": Decimal("2"),
                "scope_categories": DAIRY,
                "priority": 10,
                **_valid(60),
            },
            {"segments_include": [dairy]},
        ),
        (
            {
                "name": "Birthday month: 250 bonus points",
                "description": "250 points on your first purchase in your birthday month.",
                "condition_kind": "birthday_month",
                "benefit_kind": "bonus_fixed",
                "benefit_points": 250,
                "max_per_member": 1,
                "priority": 5,
            },
            {},
        ),
        (
            {
                "name": "Clip & earn: 100 points on a $50 shop",
                "description": "Activate it, then spend $50 or more in one basket.",
                "condition_kind": "min_spend",
                "condition_min_spend": Decimal("50"),
                "benefit_kind": "bonus_fixed",
                "benefit_points": 100,
                "requires_activation": True,
                "max_per_member": 1,
                **_valid(30),
            },
            {},
        ),
        (
            {
                "name": "Gold: triple points on seafood",
                "description": "For Gold members: three times the points on fresh and packaged seafood.",
                "condition_kind": "always",
                "benefit_kind": "bonus_multiplier",
                "benefit_multiplier": Decimal("3"),
                "scope_categories": [
                    "SEAFOOD / SEAFOOD-FRESH",
                    "SEAFOOD / SEAFOOD - FROZEN",
                    "SEAFOOD-PCKGD / SEAFOOD-FRESH",
                    "SEAFOOD-PCKGD / SEAFOOD - FROZEN",
                ],
                **_valid(90),
            },
            {"tiers": [gold] if gold else []},
        ),
        (
            {
                "name": "Weekend bonus: 25 points (while the 5,000 last)",
                "description": "25 extra points on Saturday and Sunday baskets, until 5,000 points are given.",
                "condition_kind": "day_of_week",
                "condition_days_of_week": [6, 7],
                "benefit_kind": "bonus_fixed",
                "benefit_points": 25,
                "points_budget": 5000,
                **_valid(45),
            },
            {},
        ),
    ]
    result = []
    for values, relations in offers:
        offer = Offer.objects.filter(program=program, name=values["name"]).first()
        if offer is None:
            now = clock.now()
            offer = model_save_audited(
                instance=Offer(program=program, status="active", created_at=now, updated_at=now, **values),
                actor=ACTOR,
                created=True,
                fields=["name", "status", *values],
                action="offer",
            )
            for name, related in relations.items():
                getattr(offer, name).set(related)
        result.append(offer)
    return result


DEMO_CAMPAIGN = "Demo: dairy reminder (replayed on history)"


def demo_campaign(*, program: Program, offers: list[Offer]) -> Campaign | None:
    """One finished campaign with results: launched 30 days before today to every member (20% holdout,
    two variants in the portal inbox), 14-day attribution window, then finished. The baskets in its
    window are the households' real ones, which no message caused: its uplift is noise, and its
    intervals say so. Skipped when it exists (by name)."""
    if Campaign.objects.filter(name=DEMO_CAMPAIGN).exists():
        return None
    launch_at = dt.datetime.combine(clock.today() - dt.timedelta(days=30), dt.time(15, 0), tzinfo=dt.UTC)
    dairy = next((offer for offer in offers if offer.name == "Double points on dairy"), None)
    with clock.frozen(launch_at):
        with transaction.atomic():
            reminder = content_save(
                content=Content(
                    name="Demo campaign: reminder",
                    subject="We miss you, {{ first_name }}",
                    body="You have {{ balance }} points waiting. Come back this week.",
                ),
                actor=ACTOR,
                created=True,
            )
            offer_text = content_save(
                content=Content(
                    name="Demo campaign: dairy offer",
                    subject="Double points on dairy",
                    body="{{ first_name }}, this week milk, cheese and yogurt earn twice the points.",
                    offer=dairy,
                ),
                actor=ACTOR,
                created=True,
            )
            campaign = campaign_services.campaign_save(
                campaign=Campaign(
                    program=program,
                    name=DEMO_CAMPAIGN,
                    goal="Bring members back to the store within two weeks.",
                    content=reminder,
                    channels=["inbox"],
                    holdout_percent=20,
                    attribution_days=14,
                ),
                actor=ACTOR,
            )
            if dairy is not None:
                campaign.offers.set([dairy])
            Variant.objects.create(campaign=campaign, name="Reminder", weight=1)
            Variant.objects.create(campaign=campaign, name="Dairy offer", weight=1, content=offer_text)
            campaign_services.campaign_variants_record(campaign=campaign, actor=ACTOR)
        campaign_services.campaign_launch(campaign=campaign, actor=ACTOR)
    with clock.frozen(launch_at + dt.timedelta(days=14)):
        return campaign_services.campaign_finish(campaign=campaign, actor=ACTOR, reason="attribution window over")


def demo_rewards(*, program: Program, member_external_id: str = MEMBER_HOUSEHOLD) -> list[Reward]:
    """One reward of each kind, and one whose cost is a little above what the demo member holds
    (a reward within reach); the missing ones are added (by name), audited as ``load_demo``."""
    partner = partner_ensure(name=VOUCHER_PARTNER)
    program_partner_add(program=program, partner=partner)
    member = Member.objects.filter(external_id=member_external_id).first()
    account = ledger_selectors.member_account(member=member, program=program) if member else None
    balance = account.available if account else 0
    near = max(100, math.ceil(balance * 1.08 / 50) * 50)  # 8% above, rounded up to 50: one more shop or two
    rows = [
        *REWARDS,
        (NEAR_REWARD, "experience", near, None, "", 20, "25.00", "Brunch for two at the café next door."),
    ]
    result = []
    for name, kind, cost, value, sku, stock, cost_to_business, description in rows:
        reward = Reward.objects.filter(program=program, name=name).first()
        if reward is None:
            now = clock.now()
            reward = model_save_audited(
                instance=Reward(
                    program=program,
                    name=name,
                    description=description,
                    kind=kind,
                    points_cost=cost,
                    value=Decimal(value) if value else None,
                    sku=sku,
                    stock=stock,
                    cost_to_business=Decimal(cost_to_business),
                    per_member_limit=1 if kind == "experience" else None,
                    partner=partner if kind == "partner_voucher" else None,
                    created_at=now,
                    updated_at=now,
                ),
                actor=ACTOR,
                created=True,
                fields=["name", "kind", "points_cost", "value", "stock", "partner"],
                action="reward",
            )
        result.append(reward)
    return result


class Command(BaseCommand):
    help = (
        "Load the demo: program, tiers, rules, ~300 real households with their campaigns as offers, rewards and "
        "bonus offers, RFM and CLV scores, staff and member logins (safe to rerun)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--households", type=int, default=300)

    def handle(self, *args, households: int, **options):
        with transaction.atomic():
            program = demo_program_configure()
        dataset = dataset_load(households=households)
        report = complete_journey_import(dataset=dataset, program=program)
        self.stdout.write(
            f"Complete Journey: {report.new_members} new members, {report.new_purchases} new purchases, "
            f"{report.skipped_purchases} already there ({report.seconds:.1f} s)."
        )
        campaigns = report.campaigns
        self.stdout.write(
            f"Campaigns: {campaigns.offers} new offers, {campaigns.coupons} coupons, {campaigns.coupon_uses} coupon "
            f"uses, {campaigns.offer_redemptions} offer redemptions, {campaigns.segment_members} targeted members."
        )
        run = scores_compute()
        basis = {"model": "BG/NBD × Gamma-Gamma", "historic": "historic value per day (degenerate fit)"}
        self.stdout.write(
            f"Scores: RFM and CLV of {run.members_scored} members, predicted value by "
            f"{basis.get(run.clv_basis, 'nothing (too few members)')}" + (f" ({run.note})" if run.note else "") + "."
        )
        with transaction.atomic():
            offers = demo_offers(program=program)
            rewards = demo_rewards(program=program)
        self.stdout.write(f"Demo: {len(offers)} bonus-point offers, {len(rewards)} rewards.")
        campaign = demo_campaign(program=program, offers=offers)
        if campaign is not None:
            self.stdout.write(f"Demo campaign: {campaign.name}, {campaign.audience_size} members, finished.")
        # the staff dashboards read summary tables that the nightly job fills: fill them for the whole history
        call_command("refresh_dashboards", "--full", stdout=self.stdout)
        with transaction.atomic():
            self._logins()
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for username, role in STAFF:
            self.stdout.write(f"  staff  {username:<10} {role or 'superuser'}")
        self.stdout.write(
            f"  member member     (member portal login at /login/, linked to household {MEMBER_HOUSEHOLD})"
        )

    def _logins(self) -> None:
        User = get_user_model()
        for username, role in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"is_staff": True, "is_superuser": role is None, "email": f"{username}@demo.local"},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            if role:
                user.groups.add(Group.objects.get(name=role))
        member_user, created = User.objects.get_or_create(username="member", defaults={"email": "member@demo.local"})
        if created:
            member_user.set_password(DEMO_PASSWORD)
            member_user.save()
        household = Member.objects.filter(external_id=MEMBER_HOUSEHOLD).first()
        if household and household.user_id is None and not Member.objects.filter(user=member_user).exists():
            member_link_user(member=household, user=member_user)
