-- The session holding Prisma Migrate's advisory lock (pg_advisory_lock(72707369), which
-- `prisma migrate deploy` takes for its whole run), if any, in this database.
SELECT l.pid,
       coalesce(a.state, '') AS state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS transaction_seconds,
       coalesce(a.application_name, '') AS application_name
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = 72707369 AND l.objsubid = 1
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
