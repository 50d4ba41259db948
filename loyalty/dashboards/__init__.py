"""Staff dashboards (server-rendered, staff only, per role): program health, tiers, segments, campaigns, profitability."""
