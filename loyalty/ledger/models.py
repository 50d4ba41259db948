"""Points ledger: double entry between member accounts and system accounts of a program.

Member accounts cache their balance (available, pending, debt) next to the append-only
entries; system accounts keep no cached balance (their totals are sums). Lots record each
credit's points, what remains, when they become spendable and when they expire;
allocations record which lots a debit consumed so reversals and refunds restore exactly.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Rounding(models.TextChoices):
    DOWN = "ROUND_DOWN", "Round down"
    HALF_UP = "ROUND_HALF_UP", "Round half up"
    UP = "ROUND_UP", "Round up"


class ExpiryPolicy(models.TextChoices):
    NEVER = "never", "Never"
    FIXED_MONTHS = "fixed_months", "N months after earning"
    END_OF_YEAR = "end_of_year", "31 December, N years after earning"
    INACTIVITY_MONTHS = "inactivity_months", "All points after N months without activity"


class ReturnPolicy(models.TextChoices):
    ONLY_PENDING = "only_pending", "Only from the purchase's own lot; the rest is written off"
    WITHIN_BALANCE = "within_balance", "Own lot, then other lots down to zero; the rest is written off"
    ALLOW_NEGATIVE = "allow_negative", "Own lot, other lots, then debt paid off by later earns"


class Program(models.Model):
    name = models.CharField(max_length=100, unique=True)
    currency_name = models.CharField(max_length=40, default="Points")
    currency = models.CharField(max_length=3, default="USD", help_text="ISO 4217 code of purchase money")
    earn_rate = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("1"), help_text="Points per 1.00 of eligible spend"
    )
    earn_rounding = models.CharField(max_length=16, choices=Rounding.choices, default=Rounding.DOWN)
    pending_days = models.PositiveIntegerField(default=0, help_text="Return window: points stay pending this many days")
    expiry_policy = models.CharField(max_length=20, choices=ExpiryPolicy.choices, default=ExpiryPolicy.NEVER)
    expiry_months = models.PositiveIntegerField(default=0, help_text="N for fixed_months and inactivity_months")
    expiry_years = models.PositiveIntegerField(default=0, help_text="N for end_of_year (0 = this year's 31 December)")
    point_value = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0.01"), help_text="Cost of one point in money"
    )
    return_policy = models.CharField(max_length=20, choices=ReturnPolicy.choices, default=ReturnPolicy.WITHIN_BALANCE)
    min_redeem = models.PositiveIntegerField(default=1)
    max_points_per_transaction = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        default=1_000_000,
        help_text="A purchase that would earn more points than this is refused (points_cap_exceeded); empty: no cap",
    )
    refund_grace_days = models.PositiveIntegerField(
        default=30, help_text="Refunded points of a lot that expired meanwhile live this many days"
    )
    is_default = models.BooleanField(default=False)
    partners = models.ManyToManyField(
        "partners.Partner",
        blank=True,
        related_name="+",
        help_text="Partners where members earn and burn in this program. A partner listed in no program uses the default program.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="program_one_default"),
            models.CheckConstraint(condition=Q(earn_rate__gte=0), name="program_earn_rate_non_negative"),
            models.CheckConstraint(
                condition=~Q(expiry_policy__in=["fixed_months", "inactivity_months"]) | Q(expiry_months__gt=0),
                name="program_expiry_months_set",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AccountKind(models.TextChoices):
    MEMBER = "member", "Member"
    ISSUED = "issued", "Issued (funding by issuer/partner)"
    REDEMPTION = "redemption", "Redemption"
    BREAKAGE = "breakage", "Breakage (expiry)"
    WRITE_OFF = "write_off", "Write-off"
    ADJUSTMENT = "adjustment", "Staff adjustment"


class Account(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="accounts")
    kind = models.CharField(max_length=12, choices=AccountKind.choices, default=AccountKind.MEMBER)
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Issued accounts: the partner that funds the points (empty = program owner)",
    )
    # Cached figures of member accounts (system accounts keep them at 0: their totals are sums).
    available = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    debt = models.BigIntegerField(default=0)
    earned = models.BigIntegerField(default=0)
    redeemed = models.BigIntegerField(default=0)
    expired = models.BigIntegerField(default=0)
    reversed = models.BigIntegerField(default=0)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField()

    class Meta:
        permissions = [("adjust_points", "Can adjust points with a reason")]
        constraints = [
            models.CheckConstraint(condition=Q(available__gte=0), name="account_available_non_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_non_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="account_debt_non_negative"),
            models.CheckConstraint(
                condition=(Q(kind="member") & Q(member__isnull=False)) | (~Q(kind="member") & Q(member__isnull=True)),
                name="account_member_iff_member_kind",
            ),
            models.UniqueConstraint(
                fields=["member", "program"], condition=Q(kind="member"), name="account_one_per_member_program"
            ),
            models.UniqueConstraint(
                fields=["program", "kind", "partner"],
                condition=~Q(kind="member") & Q(partner__isnull=False),
                name="account_one_partner_system_account",
            ),
            models.UniqueConstraint(
                fields=["program", "kind"],
                condition=~Q(kind="member") & Q(partner__isnull=True),
                name="account_one_system_account",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == AccountKind.MEMBER:
            return f"{self.member_id}@{self.program_id}"
        return f"{self.kind}{':' + str(self.partner_id) if self.partner_id else ''}@{self.program_id}"

    @property
    def balance(self) -> int:
        return self.available + self.pending - self.debt


class Purchase(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="purchases")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="purchases")
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=100)
    store_code = models.CharField(max_length=50, blank=True)
    occurred_at = models.DateTimeField()
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    discount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    eligible_amount = models.DecimalField(max_digits=14, decimal_places=2)
    returned_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    points_earned = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "external_id"], name="purchase_external_id_per_partner"),
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(partner__isnull=True), name="purchase_external_id_own"
            ),
            models.CheckConstraint(condition=Q(eligible_amount__gte=0), name="purchase_eligible_non_negative"),
            models.CheckConstraint(
                condition=Q(returned_amount__gte=0) & Q(returned_amount__lte=F("eligible_amount")),
                name="purchase_returned_within_eligible",
            ),
        ]
        indexes = [models.Index(fields=["member", "occurred_at"]), models.Index(fields=["occurred_at"])]

    def __str__(self) -> str:
        return f"purchase {self.external_id}"


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    category = models.CharField(max_length=100, blank=True)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("1"))
    unit_price = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    discount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    returned_quantity = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"))

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(returned_quantity__gte=0) & Q(returned_quantity__lte=F("quantity")),
                name="line_returned_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} x{self.quantity}"


class Return(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="returns")
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=14, decimal_places=2, help_text="Eligible amount returned")
    lines = models.JSONField(default=list, blank=True)
    occurred_at = models.DateTimeField()
    points_reversed = models.BigIntegerField(default=0)
    points_written_off = models.BigIntegerField(default=0)
    points_to_debt = models.BigIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partner", "external_id"], name="return_external_id_per_partner"),
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(partner__isnull=True), name="return_external_id_own"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="return_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"return {self.external_id}"


class TransactionKind(models.TextChoices):
    EARN = "earn", "Earn"
    REDEEM = "redeem", "Redeem"
    EXPIRE = "expire", "Expire"
    REVERSE = "reverse", "Reverse (return)"
    ADJUST = "adjust", "Staff adjustment"
    TRANSFER = "transfer", "Transfer"
    REFUND = "refund", "Refund of a redemption"


class EntryKind(models.TextChoices):
    EARN = "earn", "Earn"
    REDEEM = "redeem", "Redeem"
    EXPIRE = "expire", "Expire"
    REVERSE = "reverse", "Reverse"
    ADJUST = "adjust", "Adjust"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"
    REFUND = "refund", "Refund"


class LedgerTransaction(models.Model):
    """One movement; its entries sum to zero. Never updated or deleted."""

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=10, choices=TransactionKind.choices)
    reason = models.CharField(max_length=255, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # The optional references are indexed only where set (see Meta): most transactions (expiry,
    # adjustments) carry none of them, and every index is written by every ledger insert.
    purchase = models.ForeignKey(
        Purchase, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    return_record = models.ForeignKey(
        Return, null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    redemption = models.ForeignKey(
        "Redemption", null=True, blank=True, on_delete=models.PROTECT, related_name="transactions", db_index=False
    )
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals", db_index=False
    )
    partner = models.ForeignKey(
        "partners.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Partner the movement came through",
        db_index=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    actor_label = models.CharField(max_length=200, blank=True)
    explanation = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # a constraint rather than unique=True: no second (LIKE) index on PostgreSQL
            models.UniqueConstraint(fields=["idempotency_key"], name="ledgertransaction_idempotency_key"),
        ]
        indexes = [
            models.Index(fields=[name], condition=Q(**{f"{name}__isnull": False}), name=f"ledgertx_{name}")
            for name in ("purchase", "return_record", "redemption", "reverses", "partner", "actor")
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Lot(models.Model):
    """Points of one credit: what remains, when spendable, when they expire."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="lots")
    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="lots")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    is_pending = models.BooleanField(default=False)
    available_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")), name="lot_remaining_in_range"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "expires_at", "id"], condition=Q(remaining__gt=0), name="lot_open_fefo"),
            models.Index(fields=["expires_at"], condition=Q(remaining__gt=0), name="lot_open_expiry"),
            # per account: the lock's probe for due lots and the maturation job's windows of accounts
            models.Index(
                fields=["account", "available_at"], condition=Q(is_pending=True), name="lot_pending_due_per_account"
            ),
        ]

    def __str__(self) -> str:
        return f"lot #{self.pk} {self.remaining}/{self.points}"


class Entry(models.Model):
    """Append-only movement of one account within a transaction (signed points)."""

    # Entries are written by the million (an expiry run writes one per lot), and PostgreSQL checks
    # each foreign key per row at commit. The transaction and the lot an entry names are written or
    # read by the same statement, and neither can ever be deleted (PostgreSQL triggers reject
    # DELETE on transactions and lots, migrations 0002 and 0005), so those two references are not
    # re-checked row by row; the account reference is.
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries", db_constraint=False
    )
    # account is indexed by (account, created_at); lot only where set (system-side entries have none)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", db_index=False)
    lot = models.ForeignKey(
        Lot,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=12, choices=EntryKind.choices)
    points = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "entries"
        indexes = [
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["lot"], condition=Q(lot__isnull=False), name="entry_lot"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


class Allocation(models.Model):
    """Which lot a debit consumed, and how many points (restored exactly by refunds and reversals)."""

    transaction = models.ForeignKey(LedgerTransaction, on_delete=models.PROTECT, related_name="allocations")
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="allocations")
    points = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="allocation_points_positive")]

    def __str__(self) -> str:
        return f"{self.points} from lot {self.lot_id}"


class RedemptionStatus(models.TextChoices):
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled (refunded)"


class Redemption(models.Model):
    """Points burned (at a partner or for a reward). Cancelling refunds the exact lots."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="redemptions")
    partner = models.ForeignKey("partners.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    external_id = models.CharField(max_length=100, null=True, blank=True)
    description = models.CharField(max_length=255, blank=True)
    points = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=RedemptionStatus.choices, default=RedemptionStatus.COMPLETED)
    created_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="redemption_points_positive"),
            models.UniqueConstraint(fields=["partner", "external_id"], name="redemption_external_id_per_partner"),
            models.UniqueConstraint(
                fields=["external_id"], condition=Q(partner__isnull=True), name="redemption_external_id_own"
            ),
        ]

    def __str__(self) -> str:
        return f"redemption #{self.pk} {self.points}"
