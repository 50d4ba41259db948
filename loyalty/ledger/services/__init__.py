"""Everything that writes the ledger. Import from the submodules' public names here."""

from loyalty.ledger.services.accounts import account_open, program_create, program_update, system_account
from loyalty.ledger.services.bulk import (
    Credit,
    CreditResult,
    NewPurchase,
    PurchaseLineColumns,
    accounts_open_many,
    points_credit_many,
    purchases_record_many,
)
from loyalty.ledger.services.jobs import expire_due_lots, expiring_notify, mature_pending_lots
from loyalty.ledger.services.locking import LockedAccount, LockReleased, account_locked, member_account_locked
from loyalty.ledger.services.points import (
    points_adjust,
    points_credit,
    points_credit_locked,
    points_debit,
    points_redeem,
    points_refund,
    points_transfer,
)
from loyalty.ledger.services.programs import program_partner_add
from loyalty.ledger.services.purchases import purchase_create, purchase_return_clawback

__all__ = [
    "Credit",
    "CreditResult",
    "LockReleased",
    "LockedAccount",
    "NewPurchase",
    "PurchaseLineColumns",
    "account_locked",
    "accounts_open_many",
    "account_open",
    "expire_due_lots",
    "expiring_notify",
    "mature_pending_lots",
    "member_account_locked",
    "points_adjust",
    "points_credit",
    "points_credit_locked",
    "points_credit_many",
    "points_debit",
    "points_redeem",
    "points_refund",
    "points_transfer",
    "program_create",
    "program_partner_add",
    "program_update",
    "purchase_create",
    "purchases_record_many",
    "purchase_return_clawback",
    "system_account",
]
