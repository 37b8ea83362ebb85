"""Prometheus from the inside of the monitor: its HTTP query API (api), the PromQL the monitor
writes (query: label selectors, durations, exact increases) and the baseline read back from
Prometheus's history (history). Used by the daemon and by `rollout-monitor verdict` alike."""
