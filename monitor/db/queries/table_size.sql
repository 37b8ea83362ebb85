-- A table's size as the catalog estimates it: pg_class.reltuples and relpages (from the last
-- VACUUM, ANALYZE or CREATE INDEX) and pg_stat_user_tables.n_live_tup (kept up to date by the
-- statistics system). Reads the catalog and the statistics only: it opens neither the table nor
-- its files, so it takes no lock on the table and answers even while ALTER TABLE holds it
-- (pg_relation_size and friends would open the relation and queue behind that lock).
-- reltuples is -1 while the table was never vacuumed or analyzed (PostgreSQL 14+).
SELECT c.reltuples::float8 AS reltuples,
       c.relpages::bigint AS relpages,
       coalesce(s.n_live_tup, 0)::bigint AS live_tuples
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid
WHERE n.nspname = %(schema)s AND c.relname = %(table)s AND c.relkind IN ('r', 'p')
