"""The HTTP endpoint: /metrics, the guard against hostile clients, TLS and basic auth, the
status page."""
