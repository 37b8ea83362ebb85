-- The migration's session as others can see it, one row per fact (`fact`): each lock it holds
-- or awaits on the app's tables, and how long it has waited (pg_locks.waitstart, PostgreSQL
-- 14+); the index it is building, the phase and how far in it; the relations it has created
-- (invisible to others until it commits: counted by the locks it holds on them, the newest
-- being the index it builds); the oldest transaction among the sessions blocking it.
-- While a scan is on its first block PostgreSQL reports every block done (blocks_done is
-- counted from the start block, wrapping around): read as 0, which it is to within one block.
-- pg_locks, pg_stat_activity and pg_stat_progress_create_index only: no table is opened.
SELECT 'lock' AS fact, c.relname AS table_name, l.mode, l.granted,
       extract(epoch FROM clock_timestamp() - l.waitstart)::float8 AS seconds,
       NULL::text AS phase, NULL::float8 AS ratio, NULL::bigint AS created, NULL::oid AS newest
FROM pg_locks AS l
JOIN pg_class AS c ON c.oid = l.relation
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.pid = %(pid)s AND l.locktype = 'relation' AND n.nspname = %(schema)s
  AND c.relkind IN ('r', 'p', 'v', 'm')
UNION ALL
SELECT 'build', c.relname, NULL, NULL, NULL, p.phase,
       CASE WHEN p.phase = 'building index: scanning table' AND p.blocks_total > 0
                 THEN (p.blocks_done %% p.blocks_total)::float8 / p.blocks_total
            WHEN p.tuples_total > 0 THEN p.tuples_done::float8 / p.tuples_total
            ELSE 0 END,
       NULL, NULL
FROM pg_stat_progress_create_index AS p
JOIN pg_class AS c ON c.oid = p.relid
WHERE p.pid = %(pid)s
UNION ALL
SELECT 'created', NULL, NULL, NULL, NULL, NULL, NULL,
       count(DISTINCT l.relation), max(l.relation::bigint)::oid
FROM pg_locks AS l
WHERE l.pid = %(pid)s AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND NOT EXISTS (SELECT FROM pg_class AS c WHERE c.oid = l.relation)
UNION ALL
SELECT 'blocker', NULL, NULL, NULL,
       max(extract(epoch FROM clock_timestamp() - b.xact_start))::float8,
       NULL, NULL, NULL, NULL
FROM pg_stat_activity AS b
WHERE b.pid = ANY(pg_blocking_pids(%(pid)s))
