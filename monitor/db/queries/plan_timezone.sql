-- The TimeZone the migration's session will have (a timestamp <-> timestamptz change rewrites
-- the table unless it is UTC): the setting a session of this role starts with, not this one's
-- (the monitor's sessions set UTC for themselves).
SELECT reset_val AS timezone FROM pg_settings WHERE name = 'TimeZone'
