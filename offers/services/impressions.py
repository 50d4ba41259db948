"""Impressions: what a member was shown, per channel (novelty in the ranking).

Interfaces call ``offer_impressions_record`` after they showed the items of
``offers_for_member``. One row per (member, offer or reward, channel) counts the showings and
keeps the last time; concurrent calls add up (``INSERT ... ON CONFLICT DO UPDATE``, one
statement per kind, on PostgreSQL and SQLite alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from django.db import connection, transaction

from loyalty.core import clock
from loyalty.core.errors import ValidationFailed
from offers.models import OfferImpression

if TYPE_CHECKING:
    from members.models import Member

CHANNEL_MAX = 20


class Shown(Protocol):
    kind: str  # "offer" or "reward"
    id: int


def _upsert(column: str, member_id: int, ids: list[int], channel: str, now) -> None:
    table = connection.ops.quote_name(OfferImpression._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, 1, %s)"] * len(ids))
    params: list = []
    for pk in ids:
        params += [member_id, pk, channel, now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (member_id, {column}, channel, times, last_shown_at) VALUES {rows} "  # noqa: S608
            f"ON CONFLICT (member_id, {column}, channel) WHERE {column} IS NOT NULL "
            f"DO UPDATE SET times = {table}.times + 1, last_shown_at = EXCLUDED.last_shown_at",
            params,
        )


def offer_impressions_record(*, member: Member, items: Iterable[Shown], channel: str) -> int:
    """Record that ``member`` was shown ``items`` (``RankedItem`` or anything with ``kind`` and
    ``id``) in ``channel`` now. Returns how many distinct items were recorded."""
    if not channel or len(channel) > CHANNEL_MAX:
        raise ValidationFailed(f"A channel of 1 to {CHANNEL_MAX} characters", code="channel_invalid")
    offers: dict[int, None] = {}
    rewards: dict[int, None] = {}
    for item in items:
        if item.kind == "offer":
            offers[int(item.id)] = None
        elif item.kind == "reward":
            rewards[int(item.id)] = None
        else:
            raise ValidationFailed(f"Unknown item kind {item.kind!r}", code="impression_kind_invalid")
    now = clock.now()
    with transaction.atomic():
        if offers:
            _upsert("offer_id", member.pk, sorted(offers), channel, now)
        if rewards:
            _upsert("reward_id", member.pk, sorted(rewards), channel, now)
    return len(offers) + len(rewards)
