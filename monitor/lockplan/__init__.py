"""The migration's SQL read by PostgreSQL's own parser (pglast): the objects it creates, and per
statement the tables it locks, in which mode, which it rewrites, and what removes the risk."""
