"""Prometheus rules and the Alertmanager example, shipped as package data (monitor.assets)."""
