"""The Grafana dashboard: rollout-overview.json, shipped as package data (monitor.assets), and
the code that builds it with grafana-foundation-sdk (`python -m monitor.dashboards`)."""
