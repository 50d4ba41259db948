"""Referrals models."""

__all__: list[str] = []
