-- All users, and how many still have each new column NULL (one missing_<i> per column). On a
-- large table users is read through TABLESAMPLE SYSTEM, and "users" counts the rows sampled.
SELECT count(*) AS users{missing_counts}
FROM {users}
