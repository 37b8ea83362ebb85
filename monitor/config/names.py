"""Names rollout-monitor and the tools beside it hold fixed: Prisma Migrate's, and the metric
families rollout-monitor exports itself.

Prisma Migrate records each migration in `_prisma_migrations` and holds an advisory lock for the
whole of `prisma migrate deploy`.

The metric families rollout-monitor exports itself: a SQL check of the configuration may not
take one of these names (Prometheus would refuse the scrape: one family, two meanings).

tests/test_names.py checks that a real run exports nothing outside this list.
"""

from __future__ import annotations

DEFAULT_LISTEN_ADDRESS = "127.0.0.1:9838"  # loopback: nothing published by accident
PRISMA_MIGRATE_LOCK = 72707369  # the advisory lock `prisma migrate deploy` takes
PRISMA_TABLE = "_prisma_migrations"

BUILTIN_FAMILIES = frozenset(
    (
        "rollout_alerts_source_up",
        "rollout_app_pool_connections",
        "rollout_app_pool_size",
        "rollout_app_pool_utilization_ratio",
        "rollout_auth_callback_answer_known",
        "rollout_auth_callback_duration_seconds",
        "rollout_auth_callback_expected_answer_info",
        "rollout_auth_callback_http_version",
        "rollout_auth_callback_last_duration_seconds",
        "rollout_auth_callback_last_status_code",
        "rollout_auth_callback_last_success",
        "rollout_auth_callback_phase_seconds",
        "rollout_auth_callback_redirects",
        "rollout_auth_callback_requests",
        "rollout_auth_callback_ssl_earliest_cert_expiry_timestamp_seconds",
        "rollout_auth_callback_tls_info",
        "rollout_baseline_auth_callback_answered_probes",
        "rollout_baseline_auth_callback_duration_seconds",
        "rollout_baseline_auth_callback_probes",
        "rollout_baseline_auth_callback_success_ratio",
        "rollout_baseline_db_connections_ratio",
        "rollout_baseline_frozen",
        "rollout_baseline_health",
        "rollout_baseline_source",
        "rollout_baseline_user_lookup_execution_seconds",
        "rollout_baseline_user_lookup_plan_info",
        "rollout_check_applicable",
        "rollout_check_duration_seconds",
        "rollout_check_estimated",
        "rollout_check_interval_seconds",
        "rollout_check_last_success_timestamp_seconds",
        "rollout_check_runs",
        "rollout_check_sample_ratio",
        "rollout_check_skipped",
        "rollout_check_success",
        "rollout_config_last_reload_success_timestamp_seconds",
        "rollout_config_last_reload_successful",
        "rollout_db_connections",
        "rollout_db_connections_utilization_ratio",
        "rollout_db_ddl_waiting_sessions",
        "rollout_db_lock_waiting_sessions",
        "rollout_db_longest_lock_wait_seconds",
        "rollout_db_max_connections",
        "rollout_db_oldest_transaction_age_seconds",
        "rollout_db_sessions_blocked_by_ddl",
        "rollout_migration_applied_timestamp_seconds",
        "rollout_migration_applied_timestamp_source",
        "rollout_migration_blocker_transaction_seconds",
        "rollout_migration_index_build_progress_ratio",
        "rollout_migration_info",
        "rollout_migration_lock_wait_seconds",
        "rollout_migration_running",
        "rollout_migration_session_found",
        "rollout_migration_started_timestamp_seconds",
        "rollout_migration_state",
        "rollout_migration_statement",
        "rollout_migration_statement_info",
        "rollout_monitor_build_info",
        "rollout_monitor_leader",
        "rollout_monitor_pool_connect_errors",
        "rollout_monitor_pool_connections",
        "rollout_monitor_pool_connections_lost",
        "rollout_monitor_pool_connects",
        "rollout_monitor_pool_idle_connections",
        "rollout_monitor_pool_max_size",
        "rollout_monitor_pool_min_size",
        "rollout_monitor_pool_request_errors",
        "rollout_monitor_pool_requests",
        "rollout_monitor_pool_waiting_requests",
        "rollout_postgres_server_info",
        "rollout_postgres_up",
        "rollout_prisma_migration_state",
        "rollout_schema_index_valid",
        "rollout_schema_object_present",
        "rollout_schema_objects_expected",
        "rollout_schema_trigger_enabled",
        "rollout_success_criterion",
        "rollout_success_criterion_inconclusive",
        "rollout_token_validity_drift",
        "rollout_token_validity_drift_exact",
        "rollout_token_validity_sweep_oldest_timestamp_seconds",
        "rollout_token_validity_sweep_progress_ratio",
        "rollout_tokens",
        "rollout_tokens_issued",
        "rollout_tokens_refreshed",
        "rollout_user_lookup_execution_seconds",
        "rollout_user_lookup_index_scan",
        "rollout_user_lookup_plan_info",
        "rollout_user_lookup_planning_seconds",
        "rollout_users",
        "rollout_users_created",
        "rollout_users_logged_in_since_migration",
        "rollout_users_logged_in_since_migration_missing_field",
        "rollout_users_missing_field",
        "rollout_verdict",
    )
)
# What Prometheus appends to a family's name for its samples (counters, histograms).
SAMPLE_SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum")


def family_of(name: str) -> str:
    """The family a sample name belongs to (its name without a sample suffix)."""
    for suffix in SAMPLE_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in BUILTIN_FAMILIES:
            return name.removesuffix(suffix)
    return name


def is_builtin(name: str) -> bool:
    """Whether the name, or the family it would be a sample of, is rollout-monitor's own."""
    return family_of(name) in BUILTIN_FAMILIES
