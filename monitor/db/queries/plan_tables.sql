-- The tables a migration's plan names: rows (the planner's estimate, or the statistics' live
-- count where the table was never analyzed), heap size from relpages, and the app's activity
-- counters (scans and rows written) a rate is taken from. Catalog and statistics only: it opens
-- no table, so it takes no lock and never waits behind the migration (pg_relation_size would).
SELECT c.relname AS table_name,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::float8
            ELSE coalesce(s.n_live_tup, 0)::float8 END AS rows,
       c.relpages::bigint * current_setting('block_size')::bigint AS bytes,
       coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0) + coalesce(s.n_tup_ins, 0)
         + coalesce(s.n_tup_upd, 0) + coalesce(s.n_tup_del, 0) AS operations
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = ANY(%(tables)s) AND c.relkind IN ('r', 'p')
