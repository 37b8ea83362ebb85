"""Database URLs as Prisma apps write them, turned into what libpq accepts."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus

import psycopg

from monitor.output.redact import Redactor, url_secrets

# Query parameters Prisma understands and libpq rejects ("invalid URI query parameter").
PRISMA_ONLY_PARAMETERS = frozenset(
    {
        "schema",
        "connection_limit",
        "pool_timeout",
        "pgbouncer",
        "statement_cache_size",
        "socket_timeout",
        "sslaccept",
        "sslidentity",
        "single_use_connections",
    }
)


def authority_start(url: str) -> int:
    """Where the host list begins: after the user info, which (as libpq reads it) ends at the
    first '@' before any '/' (so a password may hold '?', '#' or ':')."""
    start = url.find("://") + 3
    end = start
    while end < len(url) and url[end] not in "@/":
        end += 1
    return end + 1 if end < len(url) and url[end] == "@" else start


def split_prisma_parameters(url: str) -> tuple[str, dict[str, str]]:
    """The URL without Prisma-only parameters, and those parameters (decoded, as Prisma reads
    them: `+` a space, the query ending at a `#`).

    Everything else is passed on as written, byte for byte: the query is split on `&` as written
    and only the pieces whose key is Prisma's are left out (and empty pieces, which carry nothing
    and libpq refuses). Re-encoding it would change what libpq reads: `options=-c%20search_path
    %3Dpublic` became `options=-c+search_path%3Dpublic`, and libpq, which takes `+` as written,
    sent PostgreSQL the setting `+search_path`. A `#` is no fragment to libpq but part of a value,
    and is left where it is.
    """
    mark = url.find("?", authority_start(url))
    if mark < 0:
        return url, {}
    query = url[mark + 1 :]
    prisma = {
        k: v
        for k, v in parse_qsl(query.partition("#")[0], keep_blank_values=True)
        if k in PRISMA_ONLY_PARAMETERS
    }
    kept = [
        piece
        for piece in query.split("&")
        if piece and unquote_plus(piece.partition("=")[0]) not in PRISMA_ONLY_PARAMETERS
    ]
    return url[:mark] + (f"?{'&'.join(kept)}" if kept else ""), prisma


def ports_of(url: str) -> list[str]:
    """The ports written in a URL's host list (libpq allows several hosts, and IPv6 in [])."""
    hosts = re.split(r"[/?]", url[authority_start(url) :], maxsplit=1)[0]
    return [
        host.rpartition(":")[2]
        for host in hosts.split(",")
        if ":" in host and not host.endswith("]")
    ]


def check_database_url(url: str) -> None:
    """Raise ValueError, never echoing the password, unless libpq can use this URL."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    if not all(port.isdigit() for port in ports_of(url)):
        raise ValueError("invalid port in database URL")
    libpq_url, _ = split_prisma_parameters(url)
    try:
        psycopg.conninfo.conninfo_to_dict(libpq_url)
    except (psycopg.Error, ValueError) as error:
        scrub = Redactor(url_secrets(url))
        raise ValueError(scrub(str(error).strip().splitlines()[0])) from None


def has_password(url: str) -> bool:
    """Whether the URL (already checked to be one libpq reads) carries a password."""
    libpq_url = split_prisma_parameters(url)[0]
    return bool(psycopg.conninfo.conninfo_to_dict(libpq_url).get("password"))
