"""The gate paths: /verdict?window=1h|24h, /gate/promote and /gate/rollback, as status and JSON.

/verdict answers 200 whenever it decides (pass, fail or inconclusive: Argo Rollouts' web
provider maps them with its success and failure conditions), 503 with the same document when
Prometheus cannot be asked. The two gates answer a yes or no a webhook can act on without
reading the body (Flagger reads only the status): /gate/promote 200 only on a final pass,
/gate/rollback 200 only on a fail (Flagger rolls back on a 2xx from its rollback hook), 409
otherwise, Prometheus's failure included: neither promotes nor rolls back on what is not known.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from monitor.judge.gate import Answer, Gate
from monitor.judge.rollout import VERDICT_WINDOWS

VERDICT_PATH = "/verdict"
GATES = {"/gate/promote": "pass", "/gate/rollback": "fail"}  # path -> the verdict it opens on
PATHS = (VERDICT_PATH, *GATES)
DEFAULT_WINDOW = "24h"  # as `rollout-monitor verdict --window`
MAX_BODY_BYTES = 64 * 1024  # a POST's body (Flagger's webhook payload) is read and dropped


class BadRequest(ValueError):
    """The request asks for something this path does not answer; the message says what."""


def window_asked(query: bytes) -> str:
    """The window named by the query string (?window=1h), DEFAULT_WINDOW without one."""
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise BadRequest("the query string does not parse") from None
    names = [key for key, _ in pairs]
    if unknown := sorted(set(names) - {"window"}):
        raise BadRequest(f"unknown parameter {unknown[0][:40]!r}: only window is known")
    windows = [value for key, value in pairs if key == "window"]
    if len(windows) > 1:
        raise BadRequest("window given more than once")
    window = windows[0] if windows else DEFAULT_WINDOW
    if window not in VERDICT_WINDOWS:
        raise BadRequest(f"window must be one of {', '.join(VERDICT_WINDOWS)}, not {window[:40]!r}")
    return window


def respond(gate: Gate, path: str, query: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON document for a gate path (one of PATHS)."""
    try:
        window = window_asked(query)
    except BadRequest as error:
        return 400, {"error": str(error)}
    answer = gate.answer(window)
    document = answer.document()
    if path == VERDICT_PATH:
        return (200 if answer.evaluated else 503), document
    opens_on = GATES[path]
    allowed = answer.evaluated and answer.verdict.result == opens_on
    document.update(gate=path.rsplit("/", 1)[1], allowed=allowed, reason=reason(answer))
    return (200 if allowed else 409), document


def reason(answer: Answer) -> str:
    """One line: the verdict and the criteria that made it (or why there is none)."""
    if answer.error is not None:
        return answer.error
    verdict = answer.verdict
    result, window = verdict.result, verdict.window.name
    if result == "pass":
        return f"pass: every criterion passed over the whole {window} window"
    why = [f"{d.criterion}: {d.reason}" for d in verdict.decisions if d.result == result]
    return f"{result} over the {window} window: " + ("; ".join(why) or "nothing to judge yet")


def encode(document: dict[str, Any]) -> bytes:
    """The document as the response body."""
    return (json.dumps(document, indent=2) + "\n").encode()
