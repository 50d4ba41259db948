"""Staff screens of the engagement app, one module per capability (each registers its models)."""

from loyalty.engagement.admin import (
    referrals,  # noqa: F401 - referral settings per program, referrals
    surveys,  # noqa: F401 - surveys with their questions, results and CSV export
)
