"""Which partners earn and burn in a program."""

from __future__ import annotations

from loyalty.ledger.models import Program
from loyalty.partners.models import Partner


def program_partner_add(*, program: Program, partner: Partner) -> None:
    """Let ``partner`` take part in ``program`` (idempotent). Every partner takes part in the
    default program without being added."""
    if not program.is_default:
        program.partners.add(partner)
