"""The SQL of every query, one file each, loaded by name (see monitor/sql.py)."""
