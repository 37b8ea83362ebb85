-- How close the server is to max_connections, and who is waiting on locks.
-- sessions_blocked_by_ddl: sessions waiting behind a session that holds or awaits an
-- ACCESS EXCLUSIVE lock (the lock queue behind ALTER TABLE). pg_locks.waitstart needs PG 14.
WITH ddl AS (
    SELECT DISTINCT pid
    FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
)
SELECT
    current_setting('max_connections')::int AS max_connections,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
        AS client_connections,
    (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)
     FROM pg_stat_activity
     WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())
        AS oldest_transaction_seconds,
    (SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock')
        AS lock_waiting_sessions,
    (SELECT coalesce(max(extract(epoch FROM clock_timestamp() - waitstart)), 0)
     FROM pg_locks
     WHERE NOT granted)
        AS longest_lock_wait_seconds,
    (SELECT count(DISTINCT pid)
     FROM pg_locks
     WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock' AND NOT granted)
        AS ddl_waiting_sessions,
    (SELECT count(*)
     FROM pg_stat_activity AS a
     WHERE a.wait_event_type = 'Lock'
       AND a.pid NOT IN (SELECT pid FROM ddl)
       AND pg_blocking_pids(a.pid) && ARRAY(SELECT pid FROM ddl))
        AS sessions_blocked_by_ddl
