-- The leader's lock: a session-level advisory lock, tried and never waited for. It conflicts with
-- nothing but itself (not with any table lock, so never with the migration's ALTER TABLE), and
-- the server releases it when the session ends: a leader that dies hands over by itself. The
-- transaction's time limits are set in the same statement (one round trip every poll).
SELECT
    set_config('lock_timeout', %(lock_timeout)s, true),
    set_config('statement_timeout', %(statement_timeout)s, true),
    set_config('idle_in_transaction_session_timeout', %(idle_timeout)s, true),
    pg_try_advisory_lock(%(key)s) AS acquired
