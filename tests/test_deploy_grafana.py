"""deploy/grafana: provisioning for the dashboard (issue 13, item 1 in part): a Prometheus data
source the dashboard's `datasource` variable can pick, and a file provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((ROOT / "monitor/assets/dashboards/rollout-overview.json").read_text())


def load(name: str) -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load((GRAFANA / name).read_text())
    return found


def test_the_data_source_is_one_the_dashboards_variable_picks() -> None:
    document = load("datasource.yaml")
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    variable = next(v for v in DASHBOARD["templating"]["list"] if v["name"] == "datasource")
    assert (variable["type"], variable["query"]) == ("datasource", source["type"])
    assert source["isDefault"] is True
    assert source["url"].startswith("http")


def test_the_provider_loads_files_into_a_folder_of_their_own() -> None:
    document = load("dashboards.yaml")
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "rollout-monitor"
    assert Path(provider["options"]["path"]).is_absolute()
    assert provider["allowUiUpdates"] is False  # the committed JSON stays the source
