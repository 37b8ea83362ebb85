-- The plan's performance check: the login lookup by threadsUserId, executed by
-- EXPLAIN ANALYZE, selecting only non-secret columns (never email).
EXPLAIN (ANALYZE, FORMAT JSON)
SELECT {id}, {threads_user_id}, {threads_username}
FROM {users}
WHERE {threads_user_id} = {value}
