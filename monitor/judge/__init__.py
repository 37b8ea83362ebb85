"""Judging the rollout: the success criteria and their statistics, the baseline, the
daemon's live view, the window from Prometheus."""
