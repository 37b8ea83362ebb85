"""Scrubbing of secrets and personal data from text that may reach logs or output."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|passfile|sslpassword)\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)


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
    """The URL with its password, if any, replaced by a mask."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def url_password(url: str) -> str | None:
    """The password in a URL, so that it can be scrubbed wherever it appears."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None
