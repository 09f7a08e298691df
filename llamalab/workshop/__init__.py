"""Workshop mode: dashboards for a room, an offline bundle (issue 10)."""
