-- The migration's session, as other sessions can see it: the holder of Prisma Migrate's
-- advisory lock (pg_advisory_lock(72707369), held for the whole of `prisma migrate deploy`),
-- else an active session whose query starts like the migration's SQL (Prisma sends the file
-- as one query; teams that set PRISMA_SCHEMA_DISABLE_ADVISORY_LOCK have no lock to go by).
-- pg_stat_activity.query holds at most track_activity_query_size bytes: %(prefix)s is the
-- start of the file with its whitespace folded, compared to as much of the query.
SELECT a.pid, a.backend_start, 'prisma_lock' AS found_by
FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = 72707369 AND l.objsubid = 1
  AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL
SELECT a.pid, a.backend_start, 'query_text'
FROM pg_stat_activity AS a
WHERE a.datname = current_database() AND a.state = 'active' AND a.pid <> pg_backend_pid()
  AND %(prefix)s <> ''
  AND left(regexp_replace(a.query, '\s+', ' ', 'g'), length(%(prefix)s)) = %(prefix)s
ORDER BY found_by  -- Prisma's lock first
LIMIT 1
