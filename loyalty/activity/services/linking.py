from __future__ import annotations

from loyalty.core import clock
from loyalty.partners.models import LinkVia, PartnerMember


def partner_member_link(*, partner, member, via: str = LinkVia.CARD) -> None:
    """Link a member to a partner (idempotent): from now on the partner may read the member."""
    if partner is None or PartnerMember.objects.filter(partner=partner, member=member).exists():
        return
    # INSERT ... ON CONFLICT DO NOTHING: a link made by a concurrent request is kept, no savepoint.
    PartnerMember.objects.bulk_create(
        [PartnerMember(partner=partner, member=member, via=via, linked_at=clock.now())], ignore_conflicts=True
    )
