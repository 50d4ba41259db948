"""Models of engagement, one module per capability."""

from loyalty.engagement.models.challenges import *  # noqa: F403
from loyalty.engagement.models.events import *  # noqa: F403
from loyalty.engagement.models.referrals import *  # noqa: F403
from loyalty.engagement.models.surveys import *  # noqa: F403
