"""Staff screens of the offers app, one module per area (each registers its own admin classes)."""

from offers.admin import ranking  # noqa: F401
