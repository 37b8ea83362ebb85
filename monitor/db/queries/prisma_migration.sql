-- Prisma's record of the migration: the newest attempt whose folder is the name itself or
-- ends in "_<name>" (Prisma folders start with a timestamp). Only when the table exists.
SELECT started_at, finished_at, rolled_back_at, logs IS NOT NULL AS has_logs
FROM {prisma_migrations}
WHERE migration_name = %(name)s
   OR right(migration_name, length(%(name)s) + 1) = '_' || %(name)s
ORDER BY started_at DESC
LIMIT 1
