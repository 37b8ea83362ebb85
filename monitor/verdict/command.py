"""`rollout-monitor verdict`: Prometheus -> the six criteria -> the report and exit code."""

from __future__ import annotations

import argparse
import os
import sys
import time
from urllib.parse import urlsplit

import httpx

from monitor.judge.gate import COULD_NOT_EVALUATE, from_prometheus
from monitor.judge.observation import Thresholds
from monitor.judge.report import as_json, as_table
from monitor.output.redact import Redactor, userinfo_secrets
from monitor.promql.api import Prometheus, PrometheusError
from monitor.verdict.arguments import URL_VARIABLE

USAGE_ERROR = 2


def run_verdict(args: argparse.Namespace) -> int:
    """Evaluate, print, and return the exit code (0 pass, 1 fail, 3 inconclusive)."""
    url = args.prometheus_url or os.environ.get(URL_VARIABLE)
    problem = _url_problem(url)
    if problem is not None or url is None:
        return _usage(problem or "")
    thresholds = Thresholds(args.objective, args.min_probes, args.latency_tolerance)
    name, seconds = args.window
    at = time.time() if args.at is None else args.at
    try:
        with Prometheus(url, args.timeout) as prom:
            verdict = from_prometheus(prom, args.selector, (name, seconds), at, thresholds)
    except PrometheusError as error:
        redact = Redactor(userinfo_secrets(url))
        print(f"rollout-monitor verdict: could not evaluate: {redact(str(error))}", file=sys.stderr)
        return COULD_NOT_EVALUATE
    print(as_json(verdict) if args.format == "json" else as_table(verdict))
    return verdict.exit_code


def _usage(message: str) -> int:
    print(f"rollout-monitor verdict: {message} (see --help)", file=sys.stderr)
    return USAGE_ERROR


def _url_problem(url: str | None) -> str | None:
    if not url:
        return f"--prometheus-url (or {URL_VARIABLE}) is required"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here, not at the first request
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return "--prometheus-url: not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL may hold a password: name the flag, not the value.
        return "--prometheus-url: not an http(s) URL with a host"
    return None
