-- The tables a migration's plan names: rows (the planner's estimate, or the statistics' live
-- count where the table was never analyzed), heap size from relpages, and the app's activity
-- (scans and rows written) with the seconds since the statistics were reset (else since the
-- server started), its average rate. Catalog and statistics only: it opens no table, so it takes
-- no lock and never waits behind the migration (pg_relation_size would).
SELECT c.relname AS table_name,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8
            ELSE coalesce(s.n_live_tup, 0)::float8 END AS rows,
       c.relpages::bigint * current_setting('block_size')::bigint AS bytes,
       coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0) + coalesce(s.n_tup_ins, 0)
         + coalesce(s.n_tup_upd, 0) + coalesce(s.n_tup_del, 0) AS operations,
       extract(epoch FROM now() - coalesce(
         (SELECT d.stats_reset FROM pg_stat_database AS d WHERE d.datname = current_database()),
         pg_postmaster_start_time()))::float8 AS seconds
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND c.relkind IN ('r', 'p')
