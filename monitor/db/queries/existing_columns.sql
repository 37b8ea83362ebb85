-- Which of the given columns the table has now; catalog only, no lock on the table.
SELECT a.attname AS column_name
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s
  AND c.relname = %(table)s
  AND a.attname = ANY(%(columns)s)
  AND a.attnum > 0
  AND NOT a.attisdropped
