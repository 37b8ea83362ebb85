-- Time-boxes the monitor's transaction (SET LOCAL semantics: is_local = true).
-- lock_timeout: never wait long behind a migration's lock (the lock queue behind ALTER TABLE).
-- statement_timeout: never hold even ACCESS SHARE long enough to stall that ALTER TABLE.
-- TimeZone: belt and braces; every query also converts now() to UTC explicitly.
SELECT
    set_config('lock_timeout', %(lock_timeout)s, true),
    set_config('statement_timeout', %(statement_timeout)s, true),
    set_config('idle_in_transaction_session_timeout', %(idle_timeout)s, true),
    set_config('TimeZone', 'UTC', true)
