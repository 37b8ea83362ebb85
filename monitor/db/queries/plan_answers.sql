-- What the catalogs say that a migration's text does not: a column's type (format_type), a
-- constraint's kind and the table a foreign key references, an index's table, the tables a
-- table's foreign keys reference, and whether any function of a name is volatile. One row per
-- question: %(kinds)s, %(a)s, %(b)s pair up (kind, first and second subject). Catalogs only.
WITH asked AS (
    SELECT q.n, q.kind, q.a, q.b
    FROM unnest(%(kinds)s::text[], %(a)s::text[], %(b)s::text[]) WITH ORDINALITY
         AS q(kind, a, b, n)
), tables AS (
    SELECT c.oid, c.relname FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s
)
SELECT q.n,
       CASE q.kind
       WHEN 'column_type' THEN (
           SELECT format_type(att.atttypid, att.atttypmod)
           FROM tables AS t JOIN pg_attribute AS att ON att.attrelid = t.oid
           WHERE t.relname = q.a AND att.attname = q.b AND NOT att.attisdropped)
       WHEN 'constraint_table' THEN (
           SELECT con.contype::text || ':' || coalesce(
               (SELECT r.relname FROM pg_class AS r WHERE r.oid = con.confrelid), '')
           FROM tables AS t JOIN pg_constraint AS con ON con.conrelid = t.oid
           WHERE t.relname = q.a AND con.conname = q.b LIMIT 1)
       WHEN 'index_table' THEN (
           SELECT t.relname FROM tables AS i
           JOIN pg_index AS x ON x.indexrelid = i.oid
           JOIN pg_class AS t ON t.oid = x.indrelid
           WHERE i.relname = q.a)
       WHEN 'references' THEN (
           SELECT string_agg(DISTINCT r.relname, ':')
           FROM tables AS t JOIN pg_constraint AS con ON con.conrelid = t.oid
           JOIN pg_class AS r ON r.oid = con.confrelid
           WHERE t.relname = q.a AND con.contype = 'f' AND r.oid <> t.oid)
       WHEN 'volatile' THEN (
           SELECT CASE WHEN bool_or(p.provolatile = 'v') THEN 'yes' ELSE 'no' END
           FROM pg_proc AS p WHERE p.proname = q.a HAVING count(*) > 0)
       END AS answer
FROM asked AS q
ORDER BY q.n
