"""The dashboard as the JSON Grafana imports: what rollout-overview.json holds."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from .overview import overview


def as_json(dashboard: object) -> dict[str, Any]:
    """The SDK's models as plain JSON values (enums as their strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return loaded


def render() -> str:
    """Two-space indented, as reviewed in diffs, with a final newline."""
    return json.dumps(as_json(overview()), indent=2, ensure_ascii=False) + "\n"
