"""The raw tables of imported campaigns go: offers migration 0004 made their rows offers, static
segments, coupons, coupon uses and offer redemptions (what the import now writes)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0004_config_stamp_triggers"),
        ("offers", "0004_campaigns_from_activity"),
    ]

    operations = [
        migrations.DeleteModel(name="CouponRedemption"),
        migrations.DeleteModel(name="CampaignTarget"),
        migrations.DeleteModel(name="ImportedCampaign"),
    ]
