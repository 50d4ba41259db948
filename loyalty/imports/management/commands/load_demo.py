"""Idempotent demo: the default program with three tiers and a few earning rules, about 300 real
households of The Complete Journey (dates shifted to end yesterday), staff logins per role and
a member portal login linked to one real household.

  python manage.py load_demo [--households 300]
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from loyalty.activity.models import EarningRule
from loyalty.imports.complete_journey import complete_journey_import, dataset_load
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger.services import program_update
from loyalty.tiers.models import Tier
from loyalty.tiers.services import tier_create, tier_policy_set
from members.models import Member
from members.services import member_link_user
from segments.services import scores_compute

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


class Command(BaseCommand):
    help = "Load the demo: program, tiers, rules, ~300 real households, RFM and CLV scores, staff and member logins (safe to rerun)."

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
        run = scores_compute()
        basis = {"model": "BG/NBD × Gamma-Gamma", "historic": "historic value per day (degenerate fit)"}
        self.stdout.write(
            f"Scores: RFM and CLV of {run.members_scored} members, predicted value by "
            f"{basis.get(run.clv_basis, 'nothing (too few members)')}" + (f" ({run.note})" if run.note else "") + "."
        )
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
