-- Sessions, other than the monitor's own, with a transaction holding a lock on the users or
-- token table right now: an auth callback writing a user or a token, or anything else the
-- migration's ALTER TABLE would queue behind (and make every later login queue behind it).
-- The monitor's own sessions are known by backend PID and start time. Another monitor's (a
-- sidecar of another pod) are left out only while they look like one: its application_name,
-- nothing written (no transaction ID) and younger than its statement_timeout; a client that
-- takes the name and writes, or holds its transaction open, counts.
-- Prepared transactions have no pid: they count by their virtual transaction.
SELECT count(DISTINCT coalesce(l.pid::text, l.virtualtransaction)) AS value
FROM pg_locks AS l
JOIN pg_class AS c ON c.oid = l.relation
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname = %(schema)s
  AND c.relname = ANY(%(tables)s)
  AND l.pid IS DISTINCT FROM pg_backend_pid()
  AND NOT coalesce((a.pid, a.backend_start) IN (
      SELECT * FROM unnest(%(own_pids)s::int[], %(own_starts)s::timestamptz[])
  ), false)
  AND NOT (
      a.application_name IS NOT DISTINCT FROM %(own_application_name)s
      AND a.backend_xid IS NULL
      AND a.xact_start > now() - make_interval(secs => %(monitor_statement_seconds)s)
  )
