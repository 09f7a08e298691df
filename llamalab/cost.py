"""Open vs closed: what a month of tokens costs through an API and self-hosted (issue 10)."""
