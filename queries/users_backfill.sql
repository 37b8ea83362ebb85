-- All users, and (via {missing_counts}) how many still have each new column NULL. On a large
-- table {users} is a TABLESAMPLE SYSTEM block sample, and "users" counts the rows sampled.
SELECT count(*) AS users{missing_counts}
FROM {users}
