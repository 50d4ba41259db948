"""Campaigns: audiences snapshot at launch, variants and holdout, schedule, attribution, uplift results."""
