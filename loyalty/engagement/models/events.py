"""Events models."""

__all__: list[str] = []
