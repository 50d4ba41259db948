"""What sending costs: one price per channel (``MESSAGING_COSTS``), used by campaign ROI and profitability."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def message_cost(channel: str) -> Decimal:
    """The cost of one sent message on ``channel`` (0 for a channel with no price set)."""
    return Decimal(str(settings.MESSAGING_COSTS.get(channel, "0")))


def messages_cost(sent_per_channel: dict[str, int]) -> Decimal:
    """The cost of ``{channel: sent count}``."""
    return sum((message_cost(channel) * count for channel, count in sent_per_channel.items()), Decimal(0))
