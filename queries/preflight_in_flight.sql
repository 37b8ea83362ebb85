-- Sessions, other than the monitor's own, with a transaction holding a lock on the users or
-- token table right now: an auth callback writing a user or a token, or anything else the
-- migration's ALTER TABLE would queue behind (and make every later login queue behind it).
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
  AND a.application_name IS DISTINCT FROM %(own_application_name)s
