from decimal import Decimal

from django.db import models


class PartnerKind(models.TextChoices):
    OWN_STORE = "own_store", "Own store"
    COALITION = "coalition", "Coalition partner"


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class Partner(models.Model):
    """A business where members earn and burn points (own store, franchisee, coalition brand)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=12, choices=PartnerKind.choices, default=PartnerKind.OWN_STORE)
    status = models.CharField(max_length=10, choices=PartnerStatus.choices, default=PartnerStatus.ACTIVE)
    earn_multiplier = models.DecimalField(max_digits=6, decimal_places=3, default=Decimal("1"))
    cost_per_point = models.DecimalField(
        max_digits=10, decimal_places=4, default=Decimal("0"), help_text="What the partner pays per point issued at it"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(earn_multiplier__gte=0), name="partner_multiplier_non_negative")
        ]

    def __str__(self) -> str:
        return self.name
