-- Every object the migration creates, present or not, from the system catalogs only:
-- no lock is taken on the app's tables, so this never queues behind the migration's DDL.
-- healthy: an index is valid and ready (a failed CREATE INDEX CONCURRENTLY leaves it invalid);
-- a trigger is enabled; a constraint is validated (not NOT VALID). NULL where it does not apply.
-- Tables and constraints are asked about only when the migration creates some.
SELECT 'column' AS kind,
       w.table_name || '.' || w.column_name AS name,
       a.attnum IS NOT NULL AS present,
       NULL::boolean AS healthy
FROM unnest(%(column_tables)s::text[], %(column_names)s::text[]) AS w (table_name, column_name)
LEFT JOIN pg_namespace AS n ON n.nspname = %(schema)s
LEFT JOIN pg_class AS c
    ON c.relnamespace = n.oid AND c.relname = w.table_name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_attribute AS a
    ON a.attrelid = c.oid AND a.attname = w.column_name AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', w.name, i.indexrelid IS NOT NULL, i.indisvalid AND i.indisready
FROM unnest(%(indexes)s::text[]) AS w (name)
LEFT JOIN pg_namespace AS n ON n.nspname = %(schema)s
LEFT JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('i', 'I')
LEFT JOIN pg_index AS i ON i.indexrelid = c.oid
UNION ALL
SELECT 'trigger', w.name, t.oid IS NOT NULL, t.tgenabled <> 'D'
FROM unnest(%(trigger_tables)s::text[], %(trigger_names)s::text[]) AS w (table_name, name)
LEFT JOIN pg_namespace AS n ON n.nspname = %(schema)s
LEFT JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.table_name
LEFT JOIN pg_trigger AS t ON t.tgrelid = c.oid AND t.tgname = w.name AND NOT t.tgisinternal
UNION ALL
SELECT 'function', w.name,
       EXISTS (
           SELECT 1 FROM pg_proc AS p
           JOIN pg_namespace AS pn ON pn.oid = p.pronamespace
           WHERE pn.nspname = %(schema)s AND p.proname = w.name
       ),
       NULL
FROM unnest(%(functions)s::text[]) AS w (name)
UNION ALL
SELECT 'table', w.name, c.oid IS NOT NULL, NULL
FROM unnest(%(tables)s::text[]) AS w (name)
LEFT JOIN pg_namespace AS n ON n.nspname = %(schema)s
LEFT JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'constraint', w.name, con.oid IS NOT NULL, con.convalidated
FROM unnest(%(constraint_tables)s::text[], %(constraint_names)s::text[]) AS w (table_name, name)
LEFT JOIN pg_namespace AS n ON n.nspname = %(schema)s
LEFT JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = w.table_name
LEFT JOIN pg_constraint AS con ON con.conrelid = c.oid AND con.conname = w.name
