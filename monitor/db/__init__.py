"""The database: the pool, the one read-only, time-boxed way to query, and the queries
(queries/*.sql)."""
