-- Client connections by state and application_name (the caller bounds the names).
SELECT coalesce(state, 'unknown') AS state, application_name, count(*) AS connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2
