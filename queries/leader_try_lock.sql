-- The leader's lock: a session-level advisory lock, tried and never waited for. It conflicts with
-- nothing but itself (not with any table lock, so never with the migration's ALTER TABLE), and
-- the server releases it when the session ends: a leader that dies hands over by itself.
SELECT pg_try_advisory_lock(%(key)s) AS acquired
