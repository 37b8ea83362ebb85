-- The least-privilege role rollout-monitor needs. Run as the tables' owner or a superuser:
--   psql "$DATABASE_URL" -v role=rollout_monitor -v schema=public -f docs/monitoring-role.sql
-- Create the role first (CREATE ROLE rollout_monitor LOGIN PASSWORD '...'), and run this
-- again right after migration 001: a column grant needs the column to exist.
--
-- What each check needs, and why nothing broader:
--   pg_read_all_stats   the state, wait event and transaction start of OTHER roles' sessions in
--                       pg_stat_activity (without it they read as NULL). pg_monitor adds
--                       pg_read_all_settings and pg_stat_scan_tables, which no check uses:
--                       max_connections, pg_locks, pg_blocking_pids, pg_stat_user_tables and the
--                       catalogs (pg_class, pg_attribute, pg_index, pg_trigger, pg_proc) are
--                       readable by every role.
--   column SELECT       exactly the columns the checks read, counts, TABLESAMPLE and the
--                       EXPLAIN ANALYZE of the login lookup included (each needs SELECT on the
--                       columns it names, and count(*) on any one column of the table).
--   threads_tokens.ctid the drift sweep reads the token table by block ranges (a TID Range
--                       Scan); ctid is where a row is stored, nothing of its content.
-- Deliberately NOT granted: threads_tokens."accessToken" (a secret), users.email (personal data),
-- any other column, any table-level privilege, anything but SELECT. The monitor never reads them.

-- The earlier version of this script granted pg_monitor and SELECT on all of _prisma_migrations;
-- take them back (a WARNING, not an error, where they were not granted).
REVOKE pg_monitor FROM :"role";
GRANT pg_read_all_stats TO :"role";
GRANT USAGE ON SCHEMA :"schema" TO :"role";

SELECT set_config('rollout.role', :'role', false), set_config('rollout.schema', :'schema', false);

DO $grants$
DECLARE
    monitor_role text := current_setting('rollout.role');
    app_schema text := current_setting('rollout.schema');
    wanted text[][] := ARRAY[
        -- drift, backfill, logins since the migration, the login lookup's EXPLAIN ANALYZE
        ['users', 'id'], ['users', 'threadsUserId'], ['users', 'threadsUsername'],
        ['users', 'threadsFullName'], ['users', 'threadsProfilePic'],
        ['threads_tokens', 'userId'], ['threads_tokens', 'expiresAt'],
        ['threads_tokens', 'isValid'], ['threads_tokens', 'issuedAt'],
        ['threads_tokens', 'lastRefreshedAt'],
        -- the schema check: Prisma's record of the migration
        ['_prisma_migrations', 'migration_name'], ['_prisma_migrations', 'started_at'],
        ['_prisma_migrations', 'finished_at'], ['_prisma_migrations', 'rolled_back_at'],
        ['_prisma_migrations', 'logs']
    ];
    pair text[];
BEGIN
    IF to_regclass(format('%I._prisma_migrations', app_schema)) IS NOT NULL THEN
        EXECUTE format('REVOKE SELECT ON %I._prisma_migrations FROM %I', app_schema, monitor_role);
    END IF;
    FOREACH pair SLICE 1 IN ARRAY wanted LOOP
        IF EXISTS (
            SELECT 1 FROM information_schema.columns
            WHERE table_schema = app_schema AND table_name = pair[1] AND column_name = pair[2]
        ) THEN
            EXECUTE format('GRANT SELECT (%I) ON %I.%I TO %I', pair[2], app_schema, pair[1], monitor_role);
        END IF;
    END LOOP;
    IF to_regclass(format('%I.threads_tokens', app_schema)) IS NOT NULL THEN
        EXECUTE format('GRANT SELECT (ctid) ON %I.threads_tokens TO %I', app_schema, monitor_role);
    END IF;
END
$grants$;
