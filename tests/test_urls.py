"""Prisma's database URLs handed to libpq: only Prisma's parameters left out, everything else
byte for byte as written (issue 22, finding 8)."""

from __future__ import annotations

import pytest
from databases import FreshDatabase
from monitoring import make_config
from psycopg import sql

from monitor.config.urls import split_prisma_parameters
from monitor.db.pool import Database

BASE = "postgresql://app:s3cret@db:5432/app"


@pytest.mark.parametrize(
    ("query", "kept", "prisma"),
    [
        # percent-escapes stay escapes: re-encoded, %20 became '+', which libpq takes as written
        (
            "?options=-c%20search_path%3Dpublic&schema=public",
            "?options=-c%20search_path%3Dpublic",
            {"schema": "public"},
        ),
        (
            "?schema=public&options=-c%20statement_timeout%3D5s",
            "?options=-c%20statement_timeout%3D5s",
            {"schema": "public"},
        ),
        # '+' stays '+' (libpq: a plus; Prisma: a space)
        ("?application_name=a+b&pgbouncer=true", "?application_name=a+b", {"pgbouncer": "true"}),
        ("?schema=my+schema", "", {"schema": "my schema"}),
        # repeated keys: every kept one as written, in its place; Prisma's last one wins
        (
            "?options=-c%20a%3D1&schema=x&options=-c%20b%3D2&schema=y",
            "?options=-c%20a%3D1&options=-c%20b%3D2",
            {"schema": "y"},
        ),
        # empty values kept, an empty Prisma one read as empty; empty pieces carry nothing
        (
            "?sslmode=&connection_limit=&application_name=",
            "?sslmode=&application_name=",
            {"connection_limit": ""},
        ),
        ("?&sslmode=require&&schema=a&", "?sslmode=require", {"schema": "a"}),
        # a key spelled with escapes is still Prisma's; a value is never decoded for libpq
        ("?sch%65ma=a&sslmode=verify%2Dfull", "?sslmode=verify%2Dfull", {"schema": "a"}),
        # '#' is no fragment to libpq: part of the value it ends, where it is
        ("?sslmode=require#frag", "?sslmode=require#frag", {}),
        ("?sslmode=require&schema=public#frag", "?sslmode=require", {"schema": "public"}),
        ("?schema=public#frag&sslmode=require", "?sslmode=require", {"schema": "public"}),
        # nothing of Prisma's: the URL as written
        (
            "?sslmode=require&target_session_attrs=read-write",
            "?sslmode=require&target_session_attrs=read-write",
            {},
        ),
        ("", "", {}),
        ("?", "", {}),
    ],
)
def test_only_prismas_parameters_are_left_out(
    query: str, kept: str, prisma: dict[str, str]
) -> None:
    assert split_prisma_parameters(BASE + query) == (BASE + kept, prisma)


def test_a_password_holding_a_question_mark_is_not_the_query() -> None:
    url = "postgresql://app:pa?schema=x@db/app?schema=public&options=-c%20a%3Db"
    assert split_prisma_parameters(url) == (
        "postgresql://app:pa?schema=x@db/app?options=-c%20a%3Db",
        {"schema": "public"},
    )


def test_the_pool_connects_with_options_as_psql_reads_them(fresh_db: FreshDatabase) -> None:
    """The finding: re-encoded, the options were `-c+search_path=public` and every connection
    failed (FATAL: unrecognized configuration parameter "+search_path")."""
    url = f"{fresh_db.url}?options=-c%20search_path%3Dpublic&schema=public"
    config = make_config(url)
    db = Database(config.database, url, lambda up: None)
    db.open()
    try:
        with db.session() as session:
            row = session.row(sql.Composed([sql.SQL("SELECT current_setting('search_path') AS p")]))
    finally:
        db.close()
    assert row == {"p": "public"}  # PostgreSQL's default is "$user", public
    assert config.app.schema_name == "public"
