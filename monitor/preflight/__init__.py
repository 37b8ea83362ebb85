"""preflight (issue 5)."""
