-- This session's backend PID and start time: together they name it (a PID is reused once the
-- session ends). Read when the pool opens a connection, so that the monitor tells its own
-- sessions from others by identity, never by an application_name any client can set.
SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
