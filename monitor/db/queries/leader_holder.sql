-- Who holds the leader's lock: its session's client address and backend PID (a follower's status
-- page names the leader by them). pg_locks shows a bigint key as classid (high 32 bits) and
-- objid (low 32 bits), with objsubid 1.
SELECT host(a.client_addr) AS client_addr, l.pid
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory'
  AND l.granted
  AND l.objsubid = 1
  AND l.classid::bigint = %(classid)s
  AND l.objid::bigint = %(objid)s
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
LIMIT 1
