-- The server's version: for an _info metric, and as a number for features that need one (the
-- drift sweep's TID Range Scan, PostgreSQL 14+).
SELECT split_part(current_setting('server_version'), ' ', 1) AS version,
       current_setting('server_version_num')::int AS version_num
