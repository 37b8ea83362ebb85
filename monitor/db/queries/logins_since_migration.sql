-- Users who logged in since the migration (a token issued or refreshed since then, in UTC),
-- and how many of them still miss each new column: the app's new code should fill them.
SELECT count(*) AS users{missing_counts}
FROM {users} AS u
WHERE EXISTS (
    SELECT 1
    FROM {tokens} AS t
    WHERE t.{token_user_id} = u.{user_id}
      AND (t.{issued_at} >= %(since)s OR t.{last_refreshed_at} >= %(since)s)
)
