"""status (issue 5)."""
