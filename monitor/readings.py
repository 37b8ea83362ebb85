"""The metric families the daemon reads back from its own checks (Snapshots): named once.

The baseline, the live view and the status page read what the checks last exported. Each name
they read is here, and tests/test_readings.py checks every one against what a real run exports,
so a renamed metric fails a test instead of silently turning a criterion inconclusive.
"""

from __future__ import annotations

SCHEMA_INDEX_VALID = "rollout_schema_index_valid"
SCHEMA_TRIGGER_ENABLED = "rollout_schema_trigger_enabled"
SCHEMA_OBJECT_PRESENT = "rollout_schema_object_present"
VALIDITY_DRIFT = "rollout_token_validity_drift"
LOGINS = "rollout_users_logged_in_since_migration"
LOGINS_MISSING_FIELD = "rollout_users_logged_in_since_migration_missing_field"
USERS_MISSING_FIELD = "rollout_users_missing_field"
LOOKUP_SECONDS = "rollout_user_lookup_execution_seconds"
LOOKUP_PLAN = "rollout_user_lookup_plan_info"
DB_CONNECTIONS = "rollout_db_connections"
DB_MAX_CONNECTIONS = "rollout_db_max_connections"
DB_LOCK_WAITING = "rollout_db_lock_waiting_sessions"
DB_BLOCKED_BY_DDL = "rollout_db_sessions_blocked_by_ddl"

READ_BACK = (
    SCHEMA_INDEX_VALID,
    SCHEMA_TRIGGER_ENABLED,
    SCHEMA_OBJECT_PRESENT,
    VALIDITY_DRIFT,
    LOGINS,
    LOGINS_MISSING_FIELD,
    USERS_MISSING_FIELD,
    LOOKUP_SECONDS,
    LOOKUP_PLAN,
    DB_CONNECTIONS,
    DB_MAX_CONNECTIONS,
    DB_LOCK_WAITING,
    DB_BLOCKED_BY_DDL,
)
