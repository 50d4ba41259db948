from __future__ import annotations

from loyalty.core import clock
from loyalty.core.sql import Writes, row_insert
from loyalty.partners.models import LinkVia, PartnerMember


def partner_member_link(*, partner, member, via: str = LinkVia.CARD, writes: Writes | None = None) -> None:
    """Link a member to a partner (idempotent): from now on the partner may read the member.
    ``writes``: add the link to the caller's unit of work (written when it runs) instead of now."""
    if partner is None:
        return
    # INSERT ... ON CONFLICT DO NOTHING: one statement whether or not the link exists (a link made
    # before, or by a concurrent request, is kept as it is); no savepoint.
    link = PartnerMember(partner=partner, member=member, via=via, linked_at=clock.now())
    if writes is not None:
        writes.insert(link, skip_if_exists=True)
    else:
        row_insert(link, skip_if_exists=True)
