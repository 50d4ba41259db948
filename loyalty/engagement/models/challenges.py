"""Challenges models."""

__all__: list[str] = []
