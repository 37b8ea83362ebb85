-- logins_since_migration on a large token table, read through TABLESAMPLE SYSTEM.
-- Users who logged in since the migration among the sampled tokens (each reached through the
-- users primary key, so users is never scanned), how many of them still miss each new column,
-- and how many tokens the sample held (the check scales the counts by the token table's size).
WITH sample AS MATERIALIZED (
    SELECT {token_user_id} AS user_id,
           ({issued_at} >= %(since)s OR {last_refreshed_at} >= %(since)s) AS logged_in
    FROM {tokens}
),
logged_in AS (
    SELECT DISTINCT user_id FROM sample WHERE logged_in
)
SELECT (SELECT count(*) FROM sample) AS sampled, count(*) AS users{missing_counts}
FROM logged_in AS l
JOIN {users} AS u ON u.{user_id} = l.user_id
