"""Which arm a member is in: a keyed hash of (campaign secret key, member id) gives a bucket in
0..9,999; the first ``holdout`` buckets are the holdout, the rest are split between the variants in
proportion to their weights. The same member in the same campaign always lands in the same arm,
and members cannot predict or choose theirs (the key is the campaign's secret).

The hash: the first 8 hex digits of SHA-256 of ``"<key>:<member id>"`` as an unsigned 32-bit number
``u``; bucket = ``u * 10000 >> 32``. PostgreSQL computes exactly the same with its built-in
``sha256()`` (``arm_sql``), so the launch assigns arms inside its INSERT ... SELECT; a test checks
both give the same arm for many members."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from loyalty.campaigns.models import HOLDOUT

BUCKETS = 10_000


@dataclass(frozen=True)
class Arms:
    """Bucket boundaries: bucket < ``holdout_end`` is the holdout; then variant i while
    bucket < ``ends[i]``."""

    holdout_end: int
    names: tuple[str, ...]
    ends: tuple[int, ...]

    @classmethod
    def of(cls, *, holdout_percent: Decimal | float | int, variants: Sequence[tuple[str, int]]) -> Arms:
        """``variants`` are (name, weight) pairs, weights ≥ 1; the holdout is a percentage (0 ≤ p < 100)."""
        if not variants:
            raise ValueError("a campaign needs at least one variant")
        holdout_end = int(Decimal(str(holdout_percent)) * BUCKETS / 100)
        total = sum(weight for _, weight in variants)
        ends, running = [], 0
        for _, weight in variants:
            running += weight
            ends.append(holdout_end + (BUCKETS - holdout_end) * running // total)
        return cls(holdout_end=holdout_end, names=tuple(n for n, _ in variants), ends=tuple(ends))

    def arm_of_bucket(self, bucket: int) -> str:
        if bucket < self.holdout_end:
            return HOLDOUT
        for name, end in zip(self.names, self.ends, strict=True):
            if bucket < end:
                return name
        return self.names[-1]


def bucket_of(*, key: str, member_id: int) -> int:
    digest = hashlib.sha256(f"{key}:{member_id}".encode()).hexdigest()
    return (int(digest[:8], 16) * BUCKETS) >> 32


def arm_of(*, key: str, member_id: int, arms: Arms) -> str:
    return arms.arm_of_bucket(bucket_of(key=key, member_id=member_id))


def bucket_sql(member_column: str) -> str:
    """PostgreSQL expression of ``bucket_of`` for the member id in ``member_column``; the key is the
    first parameter (``%s``)."""
    return (
        f"((('x' || substr(encode(sha256(convert_to(%s || ':' || {member_column}::text, 'UTF8')), 'hex'), 1, 8))"
        f"::bit(32)::bigint * {BUCKETS}) >> 32)"
    )


def arm_sql(arms: Arms, bucket_column: str = "b.bucket") -> tuple[str, list]:
    """PostgreSQL expression of ``arm_of`` over a bucket (``bucket_sql``) and its parameters."""
    cases = [f"WHEN {bucket_column} < %s THEN %s"]
    params: list = [arms.holdout_end, HOLDOUT]
    for name, end in zip(arms.names, arms.ends, strict=True):
        cases.append(f"WHEN {bucket_column} < %s THEN %s")
        params += [end, name]
    return f"CASE {' '.join(cases)} ELSE %s END", [*params, arms.names[-1]]
