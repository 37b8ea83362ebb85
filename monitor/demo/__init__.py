"""The demo: a throwaway database, a stand-in app under load, the daemon and Prometheus."""

from __future__ import annotations

from pathlib import Path

# The pre-migration schema, migration 001 and the plan's rollback (the test suite uses them too).
SQL_DIR = Path(__file__).resolve().parent / "sql"
