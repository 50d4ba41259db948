from __future__ import annotations

from typing import TYPE_CHECKING

from loyalty.core import clock
from loyalty.partners.models import LinkVia, PartnerMember

if TYPE_CHECKING:
    from loyalty.partners.models import Partner
    from members.models import Member


def partner_member_link(*, partner: Partner | None, member: Member, via: str = LinkVia.CARD) -> None:
    """Link a member to a partner (idempotent): from now on the partner may read the member."""
    if partner is None:
        return
    # INSERT ... ON CONFLICT DO NOTHING: one statement whether or not the link exists (a link made
    # before, or by a concurrent request, is kept as it is); no savepoint.
    PartnerMember.objects.bulk_create(
        [PartnerMember(partner=partner, member=member, via=via, linked_at=clock.now())], ignore_conflicts=True
    )
