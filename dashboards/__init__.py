"""The Grafana dashboard, shipped as package data (monitor.assets)."""
