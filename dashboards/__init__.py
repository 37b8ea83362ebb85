"""The Grafana dashboard as code, built with grafana-foundation-sdk from a checkout
(`python -m dashboards`) into monitor/assets/dashboards/rollout-overview.json, which ships."""
