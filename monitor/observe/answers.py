"""The app's own answer to the probe, as a shape: its status, its media type, the shape of its
body (a JSON object's keys, or a fingerprint of a text or HTML body without its variable parts)
and a redirect's path. Learned before the migration with the baseline (or pinned in the
configuration), it tells the app's refusal of the test code from a proxy's 404, a WAF's 403 or
a rate limiter's 429, which the status codes alone read as healthy.

`ExpectedAnswers` holds what is expected: the baseline sets it when it freezes (an event), the
callback check and the status page read it."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

MAX_KEYS = 12  # of a JSON object, in its shape
MAX_KEY_CHARS = 40
MAX_PATH_CHARS = 80
MIN_SEEN = 2  # times a shape must be seen before the migration to be the app's own
MIN_ANSWERS = 10  # successful answers needed to learn anything
# Variable parts of a text body: numbers, long hex or base64-ish tokens (ids, hashes, times).
_VARIABLE = re.compile(rb"[0-9a-f]{8,}|[A-Za-z0-9+/_-]{24,}|\d+")
_SPACE = re.compile(rb"\s+")
_PRINTABLE = re.compile(r"[^\x21-\x7e]")

Source = Literal["learned", "configuration", "none"]


def answer_shape(status: int, headers: dict[str, str], body: bytes) -> str:
    """'400 application/json {error,error_description}', '404 text/html text:1a2b3c4d',
    '302 - empty -> /login': bounded, whatever the app sends."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower() or "-"
    shape = f"{status} {_token(media, MAX_KEY_CHARS)} {body_shape(body)}"
    location = headers.get("location")
    if 300 <= status < 400 and location:
        shape += " -> " + _token(urlsplit(location).path or "/", MAX_PATH_CHARS)
    return shape


def body_shape(body: bytes) -> str:
    """A JSON object's sorted keys, '[]' for an array, 'json' for another JSON value, 'empty',
    or 'text:' and a fingerprint of the text without its variable parts."""
    if not body.strip():
        return "empty"
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        normalized = _SPACE.sub(b" ", _VARIABLE.sub(b"0", body.lower())).strip()
        return "text:" + hashlib.sha256(normalized).hexdigest()[:8]
    if isinstance(document, dict):
        keys = sorted(_token(str(key), MAX_KEY_CHARS) for key in document)
        more = ",..." if len(keys) > MAX_KEYS else ""
        return "{" + ",".join(keys[:MAX_KEYS]) + more + "}"
    return "[]" if isinstance(document, list) else "json"


def _token(text: str, most: int) -> str:
    """Printable, no spaces, at most `most` characters."""
    return _PRINTABLE.sub("?", text)[:most] or "?"


def learned(shapes: list[str]) -> tuple[str, ...]:
    """The shapes of the healthy answers before the migration that are the app's own: each seen
    at least MIN_SEEN times, out of at least MIN_ANSWERS answers; none when fewer."""
    if len(shapes) < MIN_ANSWERS:
        return ()
    return tuple(sorted(s for s, seen in Counter(shapes).items() if seen >= MIN_SEEN))


@dataclass(frozen=True)
class Expected:
    """The answers expected of the app, and where that comes from."""

    answers: frozenset[str] = frozenset()
    source: Source = "none"
    probes: int = 0  # learned from this many answers


class ExpectedAnswers:
    """What the app's healthy answer is; configured answers are kept over learned ones."""

    def __init__(self, configured: tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._expected = (
            Expected(frozenset(configured), "configuration") if configured else Expected()
        )

    def learn(self, answers: tuple[str, ...], probes: int) -> None:
        """What the baseline learned (when it froze, or from its state file)."""
        with self._lock:
            if self._expected.source != "configuration":
                self._expected = (
                    Expected(frozenset(answers), "learned", probes) if answers else Expected()
                )

    def current(self) -> Expected:
        """What is expected now."""
        with self._lock:
            return self._expected
