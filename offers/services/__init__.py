"""Writes of the offers app: rewards and their redemption (``rewards``), coupons (``coupons``),
offers, their activation, limits and budgets (``offers``). Keyword-only, each in a transaction."""
