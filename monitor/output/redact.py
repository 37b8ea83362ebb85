"""Scrubbing of secrets and personal data from text that may reach logs or output."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

MASK = "***"
# libpq's rule: the user info of a URL ends at the first '@' or '/', and the password is
# what follows its first ':'. So a password may hold '?', '#' or ':' but never '@' or '/'.
# Linear in the text: a match starts only where a run of scheme characters starts (the scheme is
# the run from its first letter), and no part gives back what it took (possessive quantifiers),
# so each character is read a bounded number of times. Started inside a run, as re.search would
# try at every one of its characters, the scheme was read to the run's end from each: quadratic.
_URL_USERINFO = re.compile(
    r"(?<![a-z0-9+.-])(?P<head>[0-9+.-]*+[a-z][a-z0-9+.-]*+://[^:@/\s]*+)"
    r":(?P<password>[^@/\s]*+)@",
    re.IGNORECASE,
)
# libpq's keyword=value form (a URL's query is _QUERY_SECRET's: it keeps the other parameters).
_KEYWORD_SECRET = re.compile(
    r"(?P<key>(?<![?&;])\b(?:password|passwd|pwd|passfile|sslpassword)\s*=\s*)"
    r"(?:'(?:[^'\\]|\\.)*'|\S+)",
    re.IGNORECASE,
)
# A secret in a URL's query: libpq's (password, sslpassword), OAuth's, and the usual API keys.
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:password|sslpassword|passwd|pwd|access_token|refresh_token|id_token|token"
    r"|api_key|apikey|key|secret|client_secret|code|sig|signature)=)[^&#\s'\"]*",
    re.IGNORECASE,
)
# Not right after '//' (a URL's user and host are not an e-mail address), nor inside a word;
# '@' written as %40 too (an address in a URL's path or query).
_EMAIL = re.compile(
    r"(?<![\w.+@%-])(?<!//)[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE
)


# How much of a text Redactor.excerpt shows, and reads past the cut to see a secret whole.
EXCERPT_LIMIT = 200
EXCERPT_CONTEXT = 4096


class Redactor:
    """Removes passwords, configured secrets and e-mail addresses from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
        text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
        text = _KEYWORD_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
        return _EMAIL.sub("<email>", text)

    def excerpt(self, text: str, limit: int = EXCERPT_LIMIT) -> str:
        """The text redacted, cut to its first `limit` characters (then ending in '…') before it
        is redacted: a server's message of megabytes is never read whole.

        A cut may split a secret that redaction would have masked whole ("…password='two wo" of
        "password='two words'", the first letters of a configured secret or of a URL's password):
        the cut is moved back until the redacted part agrees with the redaction of the text up to
        EXCERPT_CONTEXT characters past the cut, where the secret is seen whole. That is one
        redaction of limit + EXCERPT_CONTEXT characters, then tries of at most `limit` each:
        O(limit ** 2 + EXCERPT_CONTEXT), whatever the text's length (about 10 ms at worst). A secret
        running more than EXCERPT_CONTEXT characters past the cut (a quoted value or a URL's
        password of over 4 KB) is not seen whole: it is masked as the redactor masks the text cut
        there.
        """
        if len(text) <= limit:
            return self(text)
        seen = self(text[: limit + EXCERPT_CONTEXT])
        cut = limit
        while cut > 0:
            part = self(text[:cut])
            if seen.startswith(part):
                return f"{part}…"
            cut -= 1
        return "…"


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by a mask; everything else as written."""
    return _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)


# Header values that carry no secret; every other configured header value is treated as one.
PLAIN_HEADERS = frozenset({"accept", "content-type", "user-agent", "accept-encoding"})


def userinfo_secrets(url: str) -> list[str]:
    """The password of an http(s) URL, or its user when it has no password (a token then), as
    written and decoded."""
    parts = urlsplit(url) if "://" in url else None
    if parts is None or parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return []
    user, _, password = parts.netloc.rpartition("@")[0].partition(":")
    secret = password or user
    return sorted({secret, unquote(secret)}) if secret else []


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The configured header values that may be credentials (all but a few plain ones)."""
    return [v.strip() for k, v in headers.items() if k.lower() not in PLAIN_HEADERS and v.strip()]


def url_secrets(url: str) -> list[str]:
    """Every spelling of the URL's password that may show up in text: as written and decoded."""
    match = _URL_USERINFO.match(url)
    if match is None or not match["password"]:
        return []
    return sorted({match["password"], unquote(match["password"])})
