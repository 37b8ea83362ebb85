"""The monitoring role as docs/monitoring-role.sql makes it, and what it holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

ROLE_SCRIPT = Path(__file__).parent.parent / "monitor/assets/docs/monitoring-role.sql"


READER_GRANTS = {
    ("role", "pg_read_all_stats", "MEMBER"),
    *(
        ("column", f"users.{column}", "SELECT")
        for column in (
            "id",
            "threadsUserId",
            "threadsUsername",
            "threadsFullName",
            "threadsProfilePic",
        )
    ),
    *(
        ("column", f"threads_tokens.{column}", "SELECT")
        # ctid: the drift sweep reads the table by block ranges (a TID Range Scan)
        for column in ("userId", "expiresAt", "isValid", "issuedAt", "lastRefreshedAt", "ctid")
    ),
    *(
        ("column", f"_prisma_migrations.{column}", "SELECT")
        for column in ("migration_name", "started_at", "finished_at", "rolled_back_at", "logs")
    ),
}


# Every privilege a role holds that matters here: memberships, role attributes, database,
# schema, table and column privileges (has_*_privilege counts those PUBLIC holds too).
PRIVILEGES_QUERY = """
SELECT 'role' AS kind, r.rolname AS name, 'MEMBER' AS privilege
FROM pg_roles AS r
WHERE pg_has_role(%(role)s, r.oid, 'MEMBER') AND r.rolname <> %(role)s
UNION ALL
SELECT 'attribute', a.name, 'YES'
FROM pg_roles AS r,
     LATERAL (VALUES ('superuser', r.rolsuper), ('createrole', r.rolcreaterole),
                     ('createdb', r.rolcreatedb), ('replication', r.rolreplication),
                     ('bypassrls', r.rolbypassrls)) AS a (name, granted)
WHERE r.rolname = %(role)s AND a.granted
UNION ALL
SELECT 'database', d.datname, p.privilege
FROM pg_database AS d, unnest(ARRAY['CREATE', 'CONNECT', 'TEMPORARY']) AS p (privilege)
WHERE has_database_privilege(%(role)s, d.oid, p.privilege)
UNION ALL
SELECT 'schema', n.nspname, p.privilege
FROM pg_namespace AS n, unnest(ARRAY['USAGE', 'CREATE']) AS p (privilege)
WHERE has_schema_privilege(%(role)s, n.oid, p.privilege)
UNION ALL
SELECT 'table', c.relname, p.privilege
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace,
     unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
         AS p (privilege)
WHERE n.nspname = 'public' AND has_table_privilege(%(role)s, c.oid, p.privilege)
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, p.privilege
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace,
     unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p (privilege)
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND NOT a.attisdropped AND has_column_privilege(%(role)s, c.oid, a.attnum, p.privilege)
"""


def privileges(conn: psycopg.Connection[tuple[object, ...]], role: str) -> set[tuple[str, ...]]:
    """(kind, name, privilege) of everything role may do in this database."""
    rows = conn.execute(PRIVILEGES_QUERY, {"role": role}).fetchall()
    return {(str(kind), str(name), str(privilege)) for kind, name, privilege in rows}


def grant_monitoring_role(url: str, role: str) -> None:
    """Run docs/monitoring-role.sql with psql, as a user would."""
    subprocess.run(
        [
            "psql",
            url,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            f"role={role}",
            "-v",
            "schema=public",
            "-f",
            str(ROLE_SCRIPT),
        ],
        check=True,
        capture_output=True,
    )
