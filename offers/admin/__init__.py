"""Staff screens of the offers app, one module per area (each registers its models)."""

from offers.admin import (
    offers,  # noqa: F401 - offers, offer redemptions and activations
    rewards,  # noqa: F401 - rewards, reward redemptions, coupon batches, coupons, uses
)
