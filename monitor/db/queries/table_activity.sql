-- Rows inserted and updated in the app's tables since the statistics were last reset
-- (pg_stat_user_tables: cumulative, lock-free, no table scan).
SELECT relname AS table_name, n_tup_ins AS inserted, n_tup_upd AS updated
FROM pg_stat_user_tables
WHERE schemaname = %(schema)s AND relname = ANY(%(tables)s)
