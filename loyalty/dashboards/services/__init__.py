"""Writes of the dashboards app: the refresh of its summary tables."""

from loyalty.dashboards.services.refresh import dashboards_refresh

__all__ = ["dashboards_refresh"]
