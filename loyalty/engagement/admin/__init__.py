"""Staff screens of the engagement app, one module per capability (each registers its models)."""

from loyalty.engagement.admin import (
    challenges,  # noqa: F401 - challenges, badges, progress, completions, members' badges
    events,  # noqa: F401 - community events and registrations, birthday and anniversary policies
    referrals,  # noqa: F401 - referral settings per program, referrals
    surveys,  # noqa: F401 - surveys with their questions, results and CSV export
)
