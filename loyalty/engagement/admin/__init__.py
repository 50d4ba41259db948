"""Staff screens of engagement, one module per area (each registers its models)."""

from loyalty.engagement.admin import (
    challenges,  # noqa: F401 - challenges, badges, progress, completions, members' badges
    events,  # noqa: F401 - community events and registrations, birthday and anniversary policies
)
