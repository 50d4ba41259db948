"""The members app's part of data export and erasure (registered in MembersConfig.ready)."""

from __future__ import annotations

from typing import Any

from members.models import Consent, ConsentEvent, Member, MemberStatus

PERSONAL_FIELDS = {
    "email": None,
    "phone": "",
    "first_name": "",
    "last_name": "",
    "birth_date": None,
    "postal_code": "",
    "age_band": "",
    "income_band": "",
    "household_size": None,
    "household_composition": "",
    "kids_count": None,
    "home_ownership": "",
    "marital_status": "",
    "external_id": None,
}


EXPORTED_FIELDS = (
    "member_number",
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "postal_code",
    "country",
    "preferred_language",
    "age_band",
    "income_band",
    "household_size",
    "household_composition",
    "kids_count",
    "home_ownership",
    "marital_status",
    "status",
    "enrolled_at",
    "enrollment_source",
    "referral_code",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def export_member(member: Member) -> dict[str, Any]:
    profile = {field: _plain(getattr(member, field)) for field in EXPORTED_FIELDS}
    return {
        "profile": profile,
        "consents": [
            {"purpose": c.purpose, "channel": c.channel, "granted": c.granted, "updated_at": c.updated_at.isoformat()}
            for c in Consent.objects.filter(member=member).order_by("purpose", "channel")
        ],
        "consent_history": [
            {
                "purpose": e.purpose,
                "channel": e.channel,
                "granted": e.granted,
                "source": e.source,
                "wording_version": e.wording_version,
                "occurred_at": e.occurred_at.isoformat(),
            }
            for e in ConsentEvent.objects.filter(member=member).order_by("occurred_at", "id")
        ],
    }


def erase_member(member: Member) -> None:
    """Blank personal fields, unlink the portal login, withdraw every consent. The member row
    and its number stay so ledger and purchase records keep their owner."""
    Member.objects.filter(pk=member.pk).update(status=MemberStatus.ERASED, user=None, **PERSONAL_FIELDS)
    Consent.objects.filter(member=member).update(granted=False)
    # Consent history is evidence of what was agreed; it holds no personal data beyond the link.
