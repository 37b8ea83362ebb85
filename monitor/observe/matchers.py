"""blackbox_exporter's HTTP matchers on the callback's answer, same names and meaning: regular
expressions (RE2, as Go's regexp) on the body and on headers, CEL on a JSON body. Each fails the
probe with its own outcome; the detail names the matcher, never what the body held.

RE2 and CEL are imported when a matcher of their kind is configured, and the patterns compiled
once, at the first probe."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config.checks import CallbackSettings, HeaderMatch

# The outcome of each kind of matcher that fails a probe.
MATCHER_OUTCOMES = (
    "header_matched_regexp",
    "header_not_matched_regexp",
    "body_matched_regexp",
    "body_not_matched_regexp",
    "body_matched_cel",
    "body_not_matched_cel",
)


@dataclass(frozen=True)
class Answer:
    """What the probe read: the status, the headers (names lower-cased), the body (within its
    limit, decompressed)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> list[str]:
        """Every value of the header."""
        wanted = name.lower()
        return [value for key, value in self.headers if key == wanted]


Failure = tuple[str, str]  # (outcome, detail)
Matcher = Callable[[Answer], Failure | None]


class Matchers:
    """The configured matchers, compiled once; `failure` runs them in blackbox's order."""

    def __init__(self, settings: CallbackSettings) -> None:
        self._settings = settings
        self._compiled: list[Matcher] | None = None

    @property
    def configured(self) -> bool:
        """Whether any matcher is configured (the body is then kept for them)."""
        s = self._settings
        return bool(
            s.fail_if_header_matches
            or s.fail_if_header_not_matches
            or s.fail_if_body_matches_regexp
            or s.fail_if_body_not_matches_regexp
            or s.fail_if_body_json_matches_cel
            or s.fail_if_body_json_not_matches_cel
        )

    def failure(self, answer: Answer) -> Failure | None:
        """The first matcher that fails the answer, or None."""
        if self._compiled is None:
            self._compiled = compile_matchers(self._settings)
        for matcher in self._compiled:
            if (failed := matcher(answer)) is not None:
                return failed
        return None


def compile_matchers(s: CallbackSettings) -> list[Matcher]:
    """Headers, then the body's regular expressions, then CEL (blackbox's order)."""
    found: list[Matcher] = []
    if s.fail_if_header_matches or s.fail_if_header_not_matches:
        found.append(header_matcher(s.fail_if_header_matches, s.fail_if_header_not_matches))
    if s.fail_if_body_matches_regexp or s.fail_if_body_not_matches_regexp:
        found.append(body_matcher(s.fail_if_body_matches_regexp, s.fail_if_body_not_matches_regexp))
    for expression, fail_when in (
        (s.fail_if_body_json_matches_cel, True),
        (s.fail_if_body_json_not_matches_cel, False),
    ):
        if expression is not None:
            found.append(cel_matcher(expression, fail_when))
    return found


def header_matcher(matches: Sequence[HeaderMatch], not_matches: Sequence[HeaderMatch]) -> Matcher:
    """fail_if_header_matches: any value of the header matches; fail_if_header_not_matches: none
    does. A missing header fails either unless allow_missing."""
    import re2  # noqa: PLC0415

    compiled = [(m, re2.compile(m.regexp), "header_matched_regexp", True) for m in matches] + [
        (m, re2.compile(m.regexp), "header_not_matched_regexp", False) for m in not_matches
    ]

    def match(answer: Answer) -> Failure | None:
        for spec, pattern, outcome, fail_on_match in compiled:
            values = answer.header(spec.header)
            if not values:
                if spec.allow_missing:
                    continue
                return outcome, f"the header {spec.header} is missing"
            matched = any(pattern.search(value) for value in values)
            if matched == fail_on_match:
                says = "matches" if matched else "does not match"
                return outcome, f"the header {spec.header} {says} {spec.regexp!r}"
        return None

    return match


def body_matcher(matches: Sequence[str], not_matches: Sequence[str]) -> Matcher:
    """fail_if_body_matches_regexp: any matches; fail_if_body_not_matches_regexp: one does not."""
    import re2  # noqa: PLC0415

    bad = [(p, re2.compile(p.encode())) for p in matches]
    needed = [(p, re2.compile(p.encode())) for p in not_matches]

    def match(answer: Answer) -> Failure | None:
        for text, pattern in bad:
            if pattern.search(answer.body):
                return "body_matched_regexp", f"the body matches {text!r}"
        for text, pattern in needed:
            if not pattern.search(answer.body):
                return "body_not_matched_regexp", f"the body does not match {text!r}"
        return None

    return match


def cel_matcher(expression: str, fail_when: bool) -> Matcher:
    """The CEL expression on the JSON body (as `body`): fails when it is `fail_when`, when the
    body is not JSON, or when the expression cannot be evaluated on it."""
    import celpy  # noqa: PLC0415
    from celpy.adapter import json_to_cel  # noqa: PLC0415
    from celpy.celtypes import BoolType  # noqa: PLC0415

    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    outcome = "body_matched_cel" if fail_when else "body_not_matched_cel"

    def match(answer: Answer) -> Failure | None:
        try:
            document: Any = json.loads(answer.body)
        except (ValueError, RecursionError):
            return outcome, "the body is not JSON"
        try:
            result = program.evaluate({"body": json_to_cel(document)})
        except Exception:  # an evaluation error of any kind fails the probe
            return outcome, f"{expression!r} cannot be evaluated on the body"
        if not isinstance(result, BoolType):
            return outcome, f"{expression!r} is not true or false on the body"
        if bool(result) == fail_when:
            says = "matches" if fail_when else "does not match"
            return outcome, f"the body {says} {expression!r}"
        return None

    return match
