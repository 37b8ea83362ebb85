-- Sessions holding, or queued for, a lock on one of the plan's tables in a mode that conflicts
-- with the mode the migration will ask for there: the migration's ALTER would wait behind them
-- (and every query behind it). Reads pg_locks and pg_stat_activity only; this monitor's own
-- sessions (pid and start time) are left out. %(tables)s and %(modes)s pair up.
WITH planned AS (
    SELECT t.table_name, t.wanted
    FROM unnest(%(tables)s::text[], %(modes)s::text[]) AS t(table_name, wanted)
), conflicts(wanted, held) AS (
    VALUES
    ('AccessShareLock', 'AccessExclusiveLock'),
    ('RowShareLock', 'ExclusiveLock'), ('RowShareLock', 'AccessExclusiveLock'),
    ('RowExclusiveLock', 'ShareLock'), ('RowExclusiveLock', 'ShareRowExclusiveLock'),
    ('RowExclusiveLock', 'ExclusiveLock'), ('RowExclusiveLock', 'AccessExclusiveLock'),
    ('ShareUpdateExclusiveLock', 'ShareUpdateExclusiveLock'),
    ('ShareUpdateExclusiveLock', 'ShareLock'),
    ('ShareUpdateExclusiveLock', 'ShareRowExclusiveLock'),
    ('ShareUpdateExclusiveLock', 'ExclusiveLock'),
    ('ShareUpdateExclusiveLock', 'AccessExclusiveLock'),
    ('ShareLock', 'RowExclusiveLock'), ('ShareLock', 'ShareUpdateExclusiveLock'),
    ('ShareLock', 'ShareRowExclusiveLock'), ('ShareLock', 'ExclusiveLock'),
    ('ShareLock', 'AccessExclusiveLock'),
    ('ShareRowExclusiveLock', 'RowExclusiveLock'),
    ('ShareRowExclusiveLock', 'ShareUpdateExclusiveLock'),
    ('ShareRowExclusiveLock', 'ShareLock'), ('ShareRowExclusiveLock', 'ShareRowExclusiveLock'),
    ('ShareRowExclusiveLock', 'ExclusiveLock'),
    ('ShareRowExclusiveLock', 'AccessExclusiveLock'),
    ('ExclusiveLock', 'RowShareLock'), ('ExclusiveLock', 'RowExclusiveLock'),
    ('ExclusiveLock', 'ShareUpdateExclusiveLock'), ('ExclusiveLock', 'ShareLock'),
    ('ExclusiveLock', 'ShareRowExclusiveLock'), ('ExclusiveLock', 'ExclusiveLock'),
    ('ExclusiveLock', 'AccessExclusiveLock'),
    ('AccessExclusiveLock', 'AccessShareLock'), ('AccessExclusiveLock', 'RowShareLock'),
    ('AccessExclusiveLock', 'RowExclusiveLock'),
    ('AccessExclusiveLock', 'ShareUpdateExclusiveLock'), ('AccessExclusiveLock', 'ShareLock'),
    ('AccessExclusiveLock', 'ShareRowExclusiveLock'), ('AccessExclusiveLock', 'ExclusiveLock'),
    ('AccessExclusiveLock', 'AccessExclusiveLock')
)
SELECT DISTINCT ON (a.pid, p.table_name)
       a.pid,
       coalesce(a.state, '') AS state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS transaction_seconds,
       p.table_name,
       l.mode,
       l.granted,
       coalesce(a.application_name, '') AS application_name
FROM planned AS p
JOIN pg_class AS c ON c.relname = p.table_name
JOIN pg_namespace AS n ON n.oid = c.relnamespace AND n.nspname = %(schema)s
JOIN pg_locks AS l ON l.locktype = 'relation' AND l.relation = c.oid
JOIN conflicts AS x ON x.wanted = p.wanted AND x.held = l.mode
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (a.pid, a.backend_start) NOT IN (
      SELECT * FROM unnest(%(own_pids)s::int[], %(own_starts)s::timestamptz[]))
ORDER BY a.pid, p.table_name, l.granted DESC
