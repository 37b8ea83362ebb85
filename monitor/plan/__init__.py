"""`rollout-monitor plan`: the migration's lock plan, from its SQL and, with a database, the
sessions that would block it now."""
