from django import template

from loyalty.dashboards.charts import fmt

register = template.Library()


@register.simple_tag
def cell(row: dict, column) -> str:
    """A table cell as people read it (12,345; 12.3%; 1,234.50; Mar 2026)."""
    return fmt(row.get(column.key), column.kind)


@register.simple_tag
def figure(item) -> str:
    return fmt(item.value, item.kind)
