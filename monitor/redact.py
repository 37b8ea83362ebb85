"""Scrubbing of secrets and personal data from text that may reach logs or output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

MASK = "***"
# libpq's rule: the user info of a URL ends at the first '@' or '/', and the password is
# what follows its first ':'. So a password may hold '?', '#' or ':' but never '@' or '/'.
_URL_USERINFO = re.compile(
    r"(?P<head>[a-z][a-z0-9+.-]*://[^:@/\s]*):(?P<password>[^@/\s]*)@", re.IGNORECASE
)
_KEYWORD_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|passfile|sslpassword)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)",
    re.IGNORECASE,
)
# Not after '/' or '@': the user and host of a URL are not an e-mail address.
_EMAIL = re.compile(r"(?<![\w.+/@-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)


class Redactor:
    """Removes passwords, configured secrets and e-mail addresses from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
        text = _KEYWORD_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
        return _EMAIL.sub("<email>", text)


def redact_url(url: str) -> str:
    """The URL with its password, if any, replaced by a mask; everything else as written."""
    return _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)


def url_secrets(url: str) -> list[str]:
    """Every spelling of the URL's password that may show up in text: as written and decoded."""
    match = _URL_USERINFO.match(url)
    if match is None or not match["password"]:
        return []
    return sorted({match["password"], unquote(match["password"])})
