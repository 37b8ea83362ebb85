-- Tables, among those asked about, on which an ACCESS EXCLUSIVE lock is held or awaited.
-- Reading such a table now would queue this session behind the DDL, and the app behind us.
-- Reads pg_locks and the catalog only: takes no lock on the tables themselves.
SELECT DISTINCT c.relname AS table_name
FROM pg_locks AS l
JOIN pg_class AS c ON c.oid = l.relation
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation'
  AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND n.nspname = %(schema)s
  AND c.relname = ANY(%(tables)s)
ORDER BY table_name
