"""Everything that writes tiers. Import from the submodules' public names here."""

from loyalty.tiers.services.bulk import TierUpgrade, tier_statuses_open_many, tier_upgrades_record
from loyalty.tiers.services.evaluation import tiers_evaluate
from loyalty.tiers.services.rules import tier_create, tier_policy_set, tier_rules_record, tier_save, tier_snapshot
from loyalty.tiers.services.status import (
    tier_manual_end,
    tier_manual_set,
    tier_manual_validate,
    tier_status_ensure,
    tier_upgrade_check,
)

__all__ = [
    "TierUpgrade",
    "tier_create",
    "tier_manual_end",
    "tier_manual_set",
    "tier_manual_validate",
    "tier_policy_set",
    "tier_rules_record",
    "tier_save",
    "tier_snapshot",
    "tier_status_ensure",
    "tier_statuses_open_many",
    "tier_upgrade_check",
    "tier_upgrades_record",
    "tiers_evaluate",
]
