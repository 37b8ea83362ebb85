"""Database URLs as Prisma apps write them, turned into what libpq accepts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from monitor.redact import Redactor, url_password

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


def split_prisma_parameters(url: str) -> tuple[str, dict[str, str]]:
    """The URL without Prisma-only parameters, and those parameters."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    prisma = {k: v for k, v in pairs if k in PRISMA_ONLY_PARAMETERS}
    kept = [(k, v) for k, v in pairs if k not in PRISMA_ONLY_PARAMETERS]
    return urlunsplit(parts._replace(query=urlencode(kept))), prisma


def check_database_url(url: str) -> None:
    """Raise ValueError, never echoing the password, unless libpq can use this URL."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in ("postgres", "postgresql"):
        raise ValueError("expected a postgresql:// URL")
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("invalid port in database URL") from None
    libpq_url, _ = split_prisma_parameters(url)
    try:
        psycopg.conninfo.conninfo_to_dict(libpq_url)
    except (psycopg.Error, ValueError) as error:
        scrub = Redactor([p for p in [url_password(url)] if p])
        raise ValueError(scrub(str(error).strip().splitlines()[0])) from None
