-- Client connections by state and application_name (the caller bounds the names), and whether
-- they are the monitor's own sessions (by backend PID and start time, not by name).
SELECT coalesce(state, 'unknown') AS state,
       application_name,
       (pid, backend_start) IN (
           SELECT * FROM unnest(%(own_pids)s::int[], %(own_starts)s::timestamptz[])
       ) AS own,
       count(*) AS connections
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1, 2, 3
