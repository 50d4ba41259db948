from __future__ import annotations

from django.db import IntegrityError, transaction

from loyalty.core import clock
from loyalty.partners.models import LinkVia, PartnerMember


def partner_member_link(*, partner, member, via: str = LinkVia.CARD) -> None:
    """Link a member to a partner (idempotent): from now on the partner may read the member."""
    if partner is None or PartnerMember.objects.filter(partner=partner, member=member).exists():
        return
    try:
        with transaction.atomic():
            PartnerMember.objects.create(partner=partner, member=member, via=via, linked_at=clock.now())
    except IntegrityError:
        pass  # linked by a concurrent request
