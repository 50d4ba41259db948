"""Workflows: enrollment, purchases, returns, custom events, redemptions, rewards and coupons, across members,
partners, the ledger and tiers. The API, the admin and importers call these."""

from loyalty.activity.services.bulk import NewAward, rule_awards_record_many
from loyalty.activity.services.enrollment import enrollment_record, enrollment_record_many
from loyalty.activity.services.events import event_record
from loyalty.activity.services.purchases import PurchaseOutcome, purchase_record, return_record
from loyalty.activity.services.redemptions import redemption_cancel, redemption_record
from loyalty.activity.services.rewards import (
    coupon_check,
    coupon_use_cancel_record,
    coupon_use_record,
    reward_redemption_record,
)
from loyalty.activity.services.surveys import survey_submit

__all__ = [
    "NewAward",
    "PurchaseOutcome",
    "coupon_check",
    "coupon_use_cancel_record",
    "coupon_use_record",
    "enrollment_record",
    "enrollment_record_many",
    "event_record",
    "purchase_record",
    "redemption_cancel",
    "redemption_record",
    "return_record",
    "reward_redemption_record",
    "rule_awards_record_many",
    "survey_submit",
]
