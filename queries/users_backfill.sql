-- All users, and (via {missing_counts}) how many still have each new column NULL.
SELECT count(*) AS users{missing_counts}
FROM {users}
