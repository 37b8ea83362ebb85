"""The callback's latency and success before the migration: learned while pending, then frozen.

records (the probes, the summary, the saved state), summaries (the quantile maths), families
(the metric families) and learning (the state machine, and its state file)."""

from monitor.judge.baseline.families import ANSWERED_PROBES
from monitor.judge.baseline.learning import Baseline, Fetch, read_state
from monitor.judge.baseline.records import QUANTILES, Plan, Probe, SavedState, Summary
from monitor.judge.baseline.summaries import bucket_quantile, summarize

__all__ = [
    "ANSWERED_PROBES",
    "QUANTILES",
    "Baseline",
    "Fetch",
    "Plan",
    "Probe",
    "SavedState",
    "Summary",
    "bucket_quantile",
    "read_state",
    "summarize",
]
