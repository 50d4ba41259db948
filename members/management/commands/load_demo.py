"""Idempotent demo data: staff logins per role, a member portal login, generated members."""

from __future__ import annotations

import datetime as dt
import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from members import services
from members.models import EnrollmentSource, Member

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed demo login, dev only
STAFF = (
    ("admin", None),
    ("marketing", "Marketing"),
    ("support", "Support"),
    ("analyst", "Analyst"),
)
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kai", "Lena", "Mo", "Nora"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Novak", "Rossi", "Kim", "Dubois", "Silva", "Ivanova"]
AGE_BANDS = ["19-24", "25-34", "35-44", "45-54", "55-64", "65+"]
INCOME_BANDS = [
    "Under 15K",
    "15-24K",
    "25-34K",
    "35-49K",
    "50-74K",
    "75-99K",
    "100-124K",
    "125-149K",
    "150-174K",
    "175-199K",
    "200-249K",
    "250K+",
]


class Command(BaseCommand):
    help = "Load demo staff logins and generated members (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=50)

    @transaction.atomic
    def handle(self, *args, members: int, **options):
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

        rng = random.Random(42)
        new = 0
        for i in range(1, members + 1):
            external_id = f"demo-{i}"
            first, last = rng.choice(FIRST), rng.choice(LAST)
            demographics = {
                "age_band": rng.choice(AGE_BANDS),
                "income_band": rng.choice(INCOME_BANDS),
                "household_size": rng.randint(1, 5),
            }
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 20000))
            if Member.objects.filter(external_id=external_id).exists():
                continue
            services.member_enroll(
                source=EnrollmentSource.STAFF,
                external_id=external_id,
                email=f"{first}.{last}.{i}@example.com".lower(),
                first_name=first,
                last_name=last,
                birth_date=birth,
                postal_code=f"{rng.randint(10000, 99999)}",
                country="US",
                demographics=demographics,
                consents=[("marketing", "email", rng.random() < 0.7), ("personalization", "", rng.random() < 0.8)],
                consent_wording_version="demo-v1",
            )
            new += 1

        member_user, created = User.objects.get_or_create(username="member", defaults={"email": "member@demo.local"})
        if created:
            member_user.set_password(DEMO_PASSWORD)
            member_user.save()
        demo_member = Member.objects.filter(external_id="demo-1").first()
        if demo_member and demo_member.user_id is None and not Member.objects.filter(user=member_user).exists():
            services.member_link_user(member=demo_member, user=member_user)

        self.stdout.write(f"Demo data ready: {new} new members, {Member.objects.count()} in all.")
        self.stdout.write(f"Logins (password for all: {DEMO_PASSWORD}):")
        for username, role in STAFF:
            self.stdout.write(f"  staff  {username:<10} {role or 'superuser'}")
        self.stdout.write("  member member     (portal login linked to member demo-1)")
