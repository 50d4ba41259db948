"""Role groups get the permissions of the messaging models (loyalty.core.roles), and each
transactional trigger gets a default service content (email and portal inbox) that marketing can
reword in the admin."""

from django.db import migrations
from django.utils import timezone

from loyalty.core.roles import sync_roles

DEFAULTS = [
    ("welcome", "Welcome", "Welcome, {{ first_name }}!",
     "Thank you for joining {{ program }}. Your member number is {{ member_number }}. Every purchase earns points."),
    ("points_earned", "Points earned receipt", "You earned {{ points }} points",
     "Hi {{ first_name }}, your purchase earned {{ points }} points. Your balance is {{ balance }} points."),
    ("points_expiring", "Points expiring soon", "{{ points }} points expire on {{ expires_on }}",
     "Hi {{ first_name }}, {{ points }} of your points expire on {{ expires_on }}. Use them before then."),
    ("tier_up", "Tier upgraded", "Welcome to {{ tier }}",
     "Congratulations {{ first_name }}, you reached the {{ tier }} tier."),
    ("tier_down", "Tier changed", "Your tier is now {{ tier }}",
     "Hi {{ first_name }}, your tier for the new period is {{ tier }}."),
    ("reward_redeemed", "Reward redeemed", "Your reward: {{ reward }}",
     "Hi {{ first_name }}, you redeemed {{ reward }}.{% if coupon_code %} Your code: {{ coupon_code }}.{% endif %}"),
    ("coupon_issued", "Coupon issued", "Your coupon {{ coupon_code }}",
     "Hi {{ first_name }}, here is your coupon: {{ coupon_code }}.{% if expires_on %} Valid until {{ expires_on }}.{% endif %}"),
]


def seed(apps, schema_editor):
    Content = apps.get_model("messaging", "Content")
    now = timezone.now()
    for trigger, name, subject, body in DEFAULTS:
        if not Content.objects.filter(trigger=trigger).exists():
            Content.objects.create(
                name=name,
                purpose="service",
                trigger=trigger,
                channels=["email", "inbox"],
                subject=subject,
                body=body,
                is_active=True,
                created_at=now,
                updated_at=now,
            )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0001_initial"),
        ("core", "0005_staff_roles_by_model"),
    ]

    operations = [
        migrations.RunPython(sync_roles, migrations.RunPython.noop),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
