"""The dashboard as the JSON Grafana imports: what rollout-overview.json holds."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from .overview import overview


def render() -> str:
    """The SDK's models as JSON (enums as their strings), two-space indented as reviewed in
    diffs, with a final newline."""
    return json.dumps(overview(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
