"""The offers app's admin screens, one module per area (offers; rewards and coupons)."""

from offers.admin import offers  # noqa: F401 - registers the offer screens
