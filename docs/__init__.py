"""The runbook and the database role script, shipped as package data (monitor.assets)."""
