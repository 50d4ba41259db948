from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from loyalty.activity.services.linking import partner_member_link
from loyalty.engagement.services.referrals import referral_record, referral_referrer
from loyalty.ledger import selectors as ledger_selectors
from loyalty.ledger import services as ledger
from loyalty.ledger.models import Program
from loyalty.partners.models import LinkVia, Partner
from loyalty.partners.services import NewEvent, outbox_record, outbox_record_many, partner_members_link_many
from loyalty.tiers.services import tier_status_ensure, tier_statuses_open_many
from members.models import EnrollmentSource, Member
from members.services import NewMember, member_enroll, member_enroll_many


def _enrolled_payload(member: Member, program: Program, source: str, partner: Partner | None) -> dict[str, Any]:
    return {
        "member_number": member.member_number,
        "program": program.name,
        "source": source,
        "partner_id": partner.pk if partner is not None else None,
    }


def _program_of(partner: Partner | None, program: Program | None) -> Program:
    if program is not None:
        return program
    return ledger_selectors.partner_program(partner=partner) if partner else ledger_selectors.program_default()


def enrollment_record(
    *,
    source: str,
    partner: Partner | None = None,
    program: Program | None = None,
    consents: Iterable[tuple[str, str, bool]] = (),
    actor: AbstractBaseUser | None = None,
    referral_code: str = "",
    referral_channel: str = "form",
    **profile: Any,
) -> Member:
    """Enroll a member, open the account in the partner's (or default) program, give the
    initial tier, link the member to the partner and record ``member.enrolled``.
    Every way in goes through here (API, admin, CSV import) or, for many members at once,
    through ``enrollment_record_many``, which writes the same rows. ``referral_code``: a friend's code
    (checked first: an unknown code or a self-referral enrolls nothing), recorded as a referral."""
    with transaction.atomic():
        program = _program_of(partner, program)
        referrer = referral_referrer(code=referral_code, profile=profile) if referral_code else None
        member = member_enroll(source=source, consents=consents, actor=actor, referred_by=referrer, **profile)
        if referrer is not None:
            referral_record(referrer=referrer, referee=member, program=program, channel=referral_channel)
        ledger.account_open(member=member, program=program)
        tier_status_ensure(member=member, program=program)
        if partner is not None:
            partner_member_link(partner=partner, member=member, via=LinkVia.ENROLLED)
        outbox_record(
            event_type="member.enrolled", member=member, payload=_enrolled_payload(member, program, source, partner)
        )
    return member


def enrollment_record_many(
    *, source: str, members: Sequence[NewMember], partner: Partner | None = None, program: Program | None = None
) -> list[Member]:
    """``enrollment_record`` for many members at once (bulk loaders), each enrolled at its
    ``enrolled_at``: member, account opened then, base tier status since then with its history
    row, partner link, ``member.enrolled`` event, written set-based by the owning apps' bulk
    services. No consents, no actor. Events are left to the webhook sweep (no task per event)."""
    with transaction.atomic():
        program = _program_of(partner, program)
        created = member_enroll_many(source=source, members=members)
        times = [m.enrolled_at for m in created]
        ledger.accounts_open_many(program=program, members=created, opened_at=times)
        tier_statuses_open_many(program=program, members=created)
        if partner is not None:
            partner_members_link_many(
                partner=partner, member_ids=[m.pk for m in created], linked_at=times, via=LinkVia.ENROLLED
            )
        outbox_record_many(
            events=[
                NewEvent(
                    event_type="member.enrolled",
                    member_id=m.pk,
                    at=m.enrolled_at,
                    payload=_enrolled_payload(m, program, source, partner),
                )
                for m in created
            ]
        )
    return created


__all__ = ["EnrollmentSource", "NewMember", "enrollment_record", "enrollment_record_many"]
