-- Whether a session holds or awaits Prisma Migrate's advisory lock (pg_advisory_lock(72707369),
-- taken by `prisma migrate deploy` for its whole run) in this database: a migration is running.
-- A bigint key is stored as classid (high 32 bits) and objid (low 32 bits), with objsubid 1.
SELECT EXISTS (
    SELECT 1
    FROM pg_locks
    WHERE locktype = 'advisory'
      AND classid = 0
      AND objid = 72707369
      AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS held
