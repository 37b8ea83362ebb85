-- The server's version, for an _info metric.
SELECT split_part(current_setting('server_version'), ' ', 1) AS version
