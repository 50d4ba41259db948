from __future__ import annotations

from loyalty.core import clock
from loyalty.core.sql import row_insert
from loyalty.partners.models import LinkVia, PartnerMember


def partner_member_link(*, partner, member, via: str = LinkVia.CARD) -> None:
    """Link a member to a partner (idempotent): from now on the partner may read the member."""
    if partner is None:
        return
    # INSERT ... ON CONFLICT DO NOTHING: one statement whether or not the link exists (a link made
    # before, or by a concurrent request, is kept as it is); no savepoint.
    row_insert(PartnerMember(partner=partner, member=member, via=via, linked_at=clock.now()), skip_if_exists=True)
