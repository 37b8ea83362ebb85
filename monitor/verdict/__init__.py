"""verdict (issue 5)."""
