-- The least-privilege role rollout-monitor needs. Run as the tables' owner or a superuser:
--   psql "$DATABASE_URL" -v role=rollout_monitor -v schema=public -f docs/monitoring-role.sql
-- Create the role first (CREATE ROLE rollout_monitor LOGIN PASSWORD '...'), and run this
-- again right after migration 001: a column grant needs the column to exist.
-- Deliberately NOT granted: threads_tokens."accessToken" (a secret) and users.email
-- (personal data). The monitor never reads them.

GRANT pg_monitor TO :"role";
GRANT USAGE ON SCHEMA :"schema" TO :"role";

SELECT set_config('rollout.role', :'role', false), set_config('rollout.schema', :'schema', false);

DO $grants$
DECLARE
    monitor_role text := current_setting('rollout.role');
    app_schema text := current_setting('rollout.schema');
    wanted text[][] := ARRAY[
        ['users', 'id'], ['users', 'threadsUserId'], ['users', 'threadsUsername'],
        ['users', 'threadsFullName'], ['users', 'threadsProfilePic'],
        ['threads_tokens', 'userId'], ['threads_tokens', 'expiresAt'],
        ['threads_tokens', 'isValid'], ['threads_tokens', 'issuedAt'],
        ['threads_tokens', 'lastRefreshedAt']
    ];
    pair text[];
BEGIN
    FOREACH pair SLICE 1 IN ARRAY wanted LOOP
        IF EXISTS (
            SELECT 1 FROM information_schema.columns
            WHERE table_schema = app_schema AND table_name = pair[1] AND column_name = pair[2]
        ) THEN
            EXECUTE format('GRANT SELECT (%I) ON %I.%I TO %I', pair[2], app_schema, pair[1], monitor_role);
        END IF;
    END LOOP;
    IF to_regclass(format('%I._prisma_migrations', app_schema)) IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON %I._prisma_migrations TO %I', app_schema, monitor_role);
    END IF;
END
$grants$;
