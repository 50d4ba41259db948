from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from loyalty.activity.services.linking import partner_member_link
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.partners.models import LinkVia
from loyalty.partners.services import outbox_record
from loyalty.tiers.services import tier_status_ensure
from members.models import EnrollmentSource, Member
from members.services import member_enroll


def enrollment_record(
    *,
    source: str,
    partner: Any | None = None,
    program: Any | None = None,
    consents: Iterable[tuple[str, str, bool]] = (),
    actor: Any | None = None,
    **profile: Any,
) -> Member:
    """Enroll a member, open the account in the partner's (or default) program, give the
    initial tier, link the member to the partner and record ``member.enrolled``."""
    with transaction.atomic():
        program = program or (
            ledger_selectors.partner_program(partner=partner) if partner else ledger_selectors.program_default()
        )
        member = member_enroll(source=source, consents=consents, actor=actor, **profile)
        ledger.account_open(member=member, program=program)
        tier_status_ensure(member=member, program=program)
        if partner is not None:
            partner_member_link(partner=partner, member=member, via=LinkVia.ENROLLED)
        outbox_record(
            event_type="member.enrolled",
            member=member,
            payload={
                "member_number": member.member_number,
                "program": program.name,
                "source": source,
                "partner_id": getattr(partner, "pk", None),
            },
        )
    return member


__all__ = ["EnrollmentSource", "enrollment_record"]
